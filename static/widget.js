/*! Switchboard web-chat widget.
 * <script src="https://HOST/widget.js" data-channel-key="wc_..." async></script>
 * Optional: data-color="#0b7285"; elements with data-sbw-open open the chat. */
(function () {
  'use strict';
  if (window.SwitchboardWidget) return;

  var script = document.currentScript || document.querySelector('script[data-channel-key]');
  if (!script) { console.error('[switchboard] widget script tag not found'); return; }
  var channelKey = script.getAttribute('data-channel-key') || '';
  var base;
  try { base = new URL(script.src, location.href); } catch (e) { base = location; }
  var wsUrl = (base.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + base.host + '/webchat/v1/ws';
  var accent = /^#[0-9a-fA-F]{3,8}$/.test(script.getAttribute('data-color') || '') ? script.getAttribute('data-color') : '#2563eb';
  var tokenKey = 'sbw:token:' + channelKey;
  var MAX_LEN = 4000;

  // ---- state ----
  var ws = null, isReady = false, fatal = false, started = false, attempt = 0, retryTimer = null;
  var maxSeq = null; // highest seq seen on this page (deliberately not persisted)
  var bySeq = {}, byClient = {};
  var queue = []; // un-acked visitor items, in send order
  var items = [];
  var ui = {};

  function storeGet(k) { try { return localStorage.getItem(k); } catch (e) { return null; } }
  function storeSet(k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode */ } }

  function uuid4() {
    if (crypto.randomUUID && window.isSecureContext) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) e.textContent = text;
    return e;
  }

  // ---- styles ----
  var CSS = [
    '.sbw-root,.sbw-root *{box-sizing:border-box;font-family:system-ui,sans-serif;line-height:1.4}',
    '.sbw-launcher{position:fixed;right:20px;bottom:20px;width:58px;height:58px;border-radius:50%;border:0;padding:0;cursor:pointer;background:var(--sbw-accent);color:#fff;box-shadow:0 6px 20px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center}',
    '.sbw-root button:focus-visible{outline:3px solid #fbbf24;outline-offset:2px}.sbw-input:focus{outline:2px solid var(--sbw-accent);outline-offset:0}',
    '.sbw-panel{position:fixed;right:20px;bottom:90px;width:360px;max-width:calc(100vw - 24px);height:520px;max-height:calc(100vh - 110px);background:#fff;color:#111827;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.25);z-index:2147483001;display:flex;flex-direction:column;overflow:hidden;font-size:14px}',
    '.sbw-panel[hidden]{display:none}',
    '.sbw-head{background:var(--sbw-accent);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}',
    '.sbw-title{font-weight:600;font-size:15px;margin:0;flex:1}',
    '.sbw-close{background:transparent;border:0;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:2px 6px;border-radius:6px}',
    '.sbw-status{font-size:11px;color:#6b7280;padding:4px 14px;border-bottom:1px solid #e5e7eb;background:#f9fafb}',
    '.sbw-online{color:#047857}.sbw-dead{color:#b91c1c}',
    '.sbw-messages{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#fff;margin:0;list-style:none}',
    '.sbw-msg{max-width:82%;display:flex;flex-direction:column}',
    '.sbw-text{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}',
    '.sbw-in{align-self:flex-end}.sbw-in .sbw-text{background:var(--sbw-accent);color:#fff;border-bottom-right-radius:4px}',
    '.sbw-out{align-self:flex-start}.sbw-out .sbw-text{background:#f3f4f6;color:#111827;border-bottom-left-radius:4px}',
    '.sbw-draft .sbw-text{opacity:.75}',
    '.sbw-author-system{align-self:center;max-width:90%}.sbw-author-system .sbw-text{background:transparent;color:#6b7280;font-size:12px;text-align:center}',
    '.sbw-pending .sbw-text{opacity:.6}',
    '.sbw-options{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}',
    '.sbw-option{border:1px solid var(--sbw-accent);background:#fff;color:var(--sbw-accent);border-radius:16px;padding:5px 12px;font-size:13px;cursor:pointer}',
    '.sbw-form{display:flex;gap:6px;padding:10px;border-top:1px solid #e5e7eb;margin:0}',
    '.sbw-input{flex:1;min-width:0;border:1px solid #d1d5db;border-radius:10px;padding:8px 10px;font-size:14px;color:#111827;background:#fff}',
    '.sbw-send{border:0;border-radius:10px;background:var(--sbw-accent);color:#fff;padding:0 14px;font-size:14px;font-weight:600;cursor:pointer}',
    '.sbw-send:disabled,.sbw-input:disabled{opacity:.5;cursor:not-allowed}',
    '@media (max-width:480px){.sbw-panel{right:12px;bottom:84px;height:calc(100vh - 100px)}}'
  ].join('\n');

  var ICON = '<svg width="28" height="28" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" aria-hidden="true"><path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';

  function build() {
    if (ui.root) return;
    var style = el('style');
    style.textContent = CSS;
    (document.head || document.documentElement).appendChild(style);

    var root = el('div', { 'class': 'sbw-root' });
    root.style.setProperty('--sbw-accent', accent);

    var launcher = el('button', { id: 'sbw-launcher', 'class': 'sbw-launcher', type: 'button', 'aria-label': 'Open chat', 'aria-expanded': 'false', 'aria-controls': 'sbw-panel' });
    launcher.innerHTML = ICON; // static markup, no user data
    launcher.addEventListener('click', function () { if (ui.panel.hidden) open(); else close(); });

    var panel = el('div', { id: 'sbw-panel', 'class': 'sbw-panel', role: 'dialog', 'aria-label': 'Chat with us' });
    panel.hidden = true;
    var head = el('div', { 'class': 'sbw-head' });
    head.appendChild(el('h2', { 'class': 'sbw-title' }, 'Chat with us'));
    var closeBtn = el('button', { 'class': 'sbw-close', type: 'button', 'aria-label': 'Close chat' }, '\u00d7');
    closeBtn.addEventListener('click', close);
    head.appendChild(closeBtn);
    var status = el('div', { id: 'sbw-status', 'class': 'sbw-status', role: 'status', 'aria-live': 'polite' }, 'connecting\u2026');
    var list = el('div', { id: 'sbw-messages', 'class': 'sbw-messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages' });
    var form = el('form', { 'class': 'sbw-form' });
    var input = el('input', { id: 'sbw-input', 'class': 'sbw-input', type: 'text', maxlength: String(MAX_LEN), autocomplete: 'off', placeholder: 'Type a message\u2026', 'aria-label': 'Message' });
    var sendBtn = el('button', { id: 'sbw-send', 'class': 'sbw-send', type: 'submit', 'aria-label': 'Send message' }, 'Send');
    form.appendChild(input); form.appendChild(sendBtn);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (send(input.value)) input.value = '';
      input.focus();
    });
    panel.addEventListener('keydown', function (ev) { if (ev.key === 'Escape') { close(); launcher.focus(); } });

    panel.appendChild(head); panel.appendChild(status); panel.appendChild(list); panel.appendChild(form);
    root.appendChild(panel); root.appendChild(launcher);
    document.body.appendChild(root);
    ui = { root: root, launcher: launcher, panel: panel, status: status, list: list, input: input, send: sendBtn };
  }

  function setStatus(text, cls) {
    if (!ui.status) return;
    ui.status.textContent = text;
    ui.status.className = 'sbw-status' + (cls ? ' ' + cls : '');
  }

  // ---- rendering ----
  function makeItem(m) {
    var item = {
      seq: typeof m.seq === 'number' ? m.seq : null,
      clientId: m.client_id || null,
      inbound: m.direction === 'inbound',
      options: Array.isArray(m.options) ? m.options : [],
      text: m.text || ''
    };
    var cls = 'sbw-msg ' + (item.inbound ? 'sbw-in' : 'sbw-out') + ' sbw-author-' + String(m.author || (item.inbound ? 'contact' : 'bot')).replace(/[^a-z]/g, '');
    item.el = el('div', { 'class': cls });
    if (m.created_at) item.el.title = new Date(m.created_at).toLocaleString();
    item.el.appendChild(el('div', { 'class': 'sbw-text' }, item.text));
    if (item.seq != null) item.el.setAttribute('data-seq', String(item.seq));
    items.push(item);
    if (item.clientId) byClient[item.clientId] = item;
    if (item.seq != null) bySeq[item.seq] = item;
    return item;
  }

  // Keep #sbw-messages sorted by seq; items without a seq (pending) stay at the end.
  function place(item) {
    var list = ui.list, ref = null;
    if (item.seq != null) {
      var kids = list.children;
      for (var i = 0; i < kids.length; i++) {
        if (kids[i] === item.el) continue;
        var s = kids[i].getAttribute('data-seq');
        if (s === null || Number(s) > item.seq) { ref = kids[i]; break; }
      }
    }
    if (ref) list.insertBefore(item.el, ref); else list.appendChild(item.el);
  }

  function markSent(item, seq) {
    item.el.classList.remove('sbw-pending');
    var idx = queue.indexOf(item);
    if (idx >= 0) queue.splice(idx, 1);
    if (typeof seq === 'number' && item.seq !== seq) {
      if (item.seq != null && bySeq[item.seq] === item) delete bySeq[item.seq];
      item.seq = seq;
      bySeq[seq] = item;
      item.el.setAttribute('data-seq', String(seq));
      place(item);
    }
    bumpSeq(seq);
  }

  function bumpSeq(seq) { if (typeof seq === 'number' && (maxSeq === null || seq > maxSeq)) maxSeq = seq; }

  // Quick replies go under the latest outbound message with options, unless the visitor answered since.
  function renderOptions() {
    var best = null, lastIn = -1;
    items.forEach(function (it) {
      var s = it.seq == null ? Infinity : it.seq;
      if (it.inbound) { if (s > lastIn) lastIn = s; }
      else if (it.options.length && it.seq != null && (!best || it.seq > best.seq)) best = it;
    });
    if (best && lastIn > best.seq) best = null;
    var old = ui.list.querySelector('.sbw-options');
    if (old && best && old.parentNode === best.el) return; // unchanged
    if (old) old.parentNode.removeChild(old);
    if (!best) return;
    var box = el('div', { 'class': 'sbw-options', role: 'group', 'aria-label': 'Quick replies' });
    best.options.forEach(function (o) {
      var label = String(o && (o.label || o.id) || '');
      if (!label) return;
      var b = el('button', { 'class': 'sbw-option', type: 'button', 'aria-label': label }, label);
      if (o.id) b.setAttribute('data-option-id', String(o.id));
      b.addEventListener('click', function () {
        if (box.parentNode) box.parentNode.removeChild(box);
        send(label);
      });
      box.appendChild(b);
    });
    best.el.appendChild(box);
  }

  function scrollDown() { ui.list.scrollTop = ui.list.scrollHeight; }

  // Replies being written (streamed by an LLM) show as drafts until their message arrives.
  var drafts = {};

  function onDraft(f) {
    var id = String(f.draft_id || '');
    if (!id || !ui.list) return;
    var d = drafts[id];
    if (f.discarded || d === null) { dropDrafts([id]); return; }
    if (!d) {
      d = el('div', { 'class': 'sbw-msg sbw-out sbw-author-bot sbw-draft', 'data-draft': id });
      d.appendChild(el('div', { 'class': 'sbw-text' }, ''));
      drafts[id] = d;
    }
    d.firstChild.textContent = String(f.text || '');
    ui.list.appendChild(d);
    scrollDown();
  }

  function dropDrafts(ids) {
    ids.forEach(function (id) {
      var d = drafts[id];
      if (d && d.parentNode) d.parentNode.removeChild(d);
      drafts[id] = null; // a late update of a replaced draft is ignored
    });
  }

  function onMessage(m) {
    if (!m || typeof m !== 'object') return;
    if (Array.isArray(m.drafts)) dropDrafts(m.drafts.map(String));
    var seq = typeof m.seq === 'number' ? m.seq : null;
    if (seq != null && bySeq[seq]) { bumpSeq(seq); return; }
    if (m.client_id && byClient[m.client_id]) { markSent(byClient[m.client_id], seq); renderOptions(); return; }
    var item = makeItem(m);
    place(item);
    bumpSeq(seq);
    renderOptions();
    scrollDown();
  }

  // ---- socket ----
  function transmit(item) {
    if (!ws || !isReady || ws.readyState !== 1) return false;
    ws.send(JSON.stringify({ type: 'send', client_id: item.clientId, text: item.text }));
    return true;
  }

  function connect() {
    if (fatal) return;
    clearTimeout(retryTimer); retryTimer = null;
    isReady = false;
    setStatus(attempt ? 'reconnecting\u2026' : 'connecting\u2026');
    var sock;
    try { sock = new WebSocket(wsUrl); } catch (e) { console.error('[switchboard]', e); scheduleReconnect(); return; }
    ws = sock;
    sock.onopen = function () {
      sock.send(JSON.stringify({ type: 'hello', channel_key: channelKey, visitor_token: storeGet(tokenKey) || null, after_seq: maxSeq }));
    };
    sock.onmessage = function (ev) {
      if (sock !== ws) return;
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { console.warn('[switchboard] bad frame', ev.data); return; }
      if (!f || typeof f.type !== 'string') return;
      if (f.type === 'ready') {
        if (f.visitor_token) storeSet(tokenKey, f.visitor_token);
        isReady = true; attempt = 0;
        setStatus('online', 'sbw-online');
        queue.slice().forEach(transmit); // resend every un-acked message (server dedupes by client_id)
      } else if (f.type === 'message') {
        onMessage(f.message);
      } else if (f.type === 'draft') {
        onDraft(f);
      } else if (f.type === 'ack') {
        var it = byClient[f.client_id];
        if (it) { markSent(it, f.seq); renderOptions(); }
      } else if (f.type === 'error') {
        if (f.code === 'unknown_channel') {
          fatal = true;
          setStatus('Chat unavailable', 'sbw-dead');
          ui.input.disabled = true; ui.send.disabled = true;
          sock.close();
        } else {
          console.warn('[switchboard] server error:', f.code, f.message);
        }
      }
    };
    sock.onclose = sock.onerror = function () {
      if (sock !== ws) return;
      ws = null; isReady = false;
      sock.close();
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (fatal || retryTimer) return;
    var max = Math.min(10000, 500 * Math.pow(2, attempt));
    attempt++;
    var delay = max / 2 + Math.random() * max / 2;
    setStatus('reconnecting\u2026');
    retryTimer = setTimeout(function () { retryTimer = null; connect(); }, delay);
  }

  function start() {
    if (started) return;
    started = true;
    connect();
  }

  window.addEventListener('online', function () {
    if (started && !ws && !fatal) { attempt = 0; connect(); }
  });

  // ---- public API ----
  function open() {
    build();
    ui.panel.hidden = false;
    ui.launcher.setAttribute('aria-expanded', 'true');
    ui.launcher.setAttribute('aria-label', 'Close chat');
    start();
    scrollDown();
    if (!ui.input.disabled) ui.input.focus();
  }

  function close() {
    if (!ui.panel) return;
    ui.panel.hidden = true;
    ui.launcher.setAttribute('aria-expanded', 'false');
    ui.launcher.setAttribute('aria-label', 'Open chat');
  }

  function send(text) {
    build();
    text = String(text == null ? '' : text).trim();
    if (!text || fatal) return false;
    if (Array.from(text).length > MAX_LEN) { console.warn('[switchboard] message too long'); return false; }
    start();
    var item = makeItem({ direction: 'inbound', author: 'contact', text: text, client_id: uuid4() });
    item.el.classList.add('sbw-pending');
    queue.push(item);
    place(item);
    renderOptions();
    scrollDown();
    transmit(item); // if offline it stays queued until the next `ready`
    return true;
  }

  window.SwitchboardWidget = { open: open, close: close, send: send };
  // Any element with a data-sbw-open attribute opens the chat (no inline JS needed).
  document.addEventListener('click', function (ev) {
    var t = ev.target && ev.target.closest && ev.target.closest('[data-sbw-open]');
    if (t) { ev.preventDefault(); open(); }
  });

  if (document.body) build();
  else document.addEventListener('DOMContentLoaded', build);
})();
