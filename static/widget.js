/*!
 * Switchboard chat widget.
 *
 * Embed with one tag:
 *   <script src="https://support.example.com/widget.js" defer
 *           data-title="Acme Support" data-color="#4f46e5" data-bot-context="pricing"></script>
 *
 * Options (all optional), as data- attributes on the script tag:
 *   data-title         panel title                       (default "Support")
 *   data-subtitle      line under the title              (default "We usually reply in a few minutes")
 *   data-welcome       first line of the welcome card
 *   data-color         accent colour, any CSS colour     (default #4f46e5)
 *   data-bot-context   context passed to the bot (<= 200 characters)
 *   data-team          the team (department) chats from this page go to, by name
 *   data-position      "right" (default) or "left"
 *   data-name          the visitor's name, if the host page knows it
 *   data-email         the visitor's email, if the host page knows it
 *   data-open          "true" opens the panel on load
 *   data-token         a customer JWT minted by the host site for its signed-in user
 *                      (see the README); without it the widget is an anonymous visitor
 *
 * The server's origin is taken from this script's own src, so the widget works
 * on any site. Everything lives in a shadow root: the host page's CSS cannot
 * reach it. Every text a person typed is inserted as text, never as HTML.
 *
 * window.Switchboard exposes open(), close(), toggle() and identify(token).
 */
(function () {
  'use strict';

  if (window.Switchboard && window.Switchboard.__loaded) return;

  var script = document.currentScript ||
    (function () {
      var all = document.querySelectorAll('script[src]');
      for (var i = all.length - 1; i >= 0; i--) {
        if (/\/widget\.js(\?|#|$)/.test(all[i].src)) return all[i];
      }
      return null;
    })();
  if (!script) return;

  var ORIGIN = new URL(script.src, location.href).origin;
  var WS_ORIGIN = ORIGIN.replace(/^http/, 'ws');
  var STORE_KEY = 'switchboard:v1:' + ORIGIN;
  var MAX_CONTENT = 4000;
  var MAX_UPLOAD = 10 * 1024 * 1024;
  var UPLOAD_TYPES = /^(image\/(png|jpe?g|gif|webp)|application\/pdf|text\/plain)$/;

  var data = script.dataset || {};
  var config = {
    title: data.title || 'Support',
    subtitle: data.subtitle || 'We usually reply in a few minutes',
    welcome: data.welcome || 'Hi there! How can we help you today?',
    color: data.color || '#4f46e5',
    botContext: data.botContext ? String(data.botContext).slice(0, 200) : '',
    team: data.team ? String(data.team).slice(0, 60) : '',
    position: data.position === 'left' ? 'left' : 'right',
    name: data.name || '',
    email: data.email || '',
    open: data.open === 'true',
    token: data.token || ''
  };

  // ---------------------------------------------------------------- storage

  var memoryStore = {};
  function readStore() {
    try {
      var raw = window.localStorage.getItem(STORE_KEY);
      return raw ? JSON.parse(raw) || {} : {};
    } catch (e) {
      return memoryStore;
    }
  }
  function writeStore(patch) {
    var current = readStore();
    for (var key in patch) {
      if (Object.prototype.hasOwnProperty.call(patch, key)) {
        if (patch[key] === undefined) delete current[key];
        else current[key] = patch[key];
      }
    }
    memoryStore = current;
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(current));
    } catch (e) { /* private mode: keep it in memory */ }
  }

  // ---------------------------------------------------------------- helpers

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var ICONS = {
    chat: 'M21 11.5a8.5 8.5 0 0 1-12.3 7.6L3.5 20.5l1.4-4.8A8.5 8.5 0 1 1 21 11.5z',
    close: 'M6 6l12 12M18 6L6 18',
    down: 'M6 9l6 6 6-6',
    send: 'M5 12h13M12 5l7 7-7 7',
    clip: 'M20.5 11.5l-8.6 8.6a5.2 5.2 0 0 1-7.4-7.4l8.6-8.6a3.5 3.5 0 0 1 4.9 4.9l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9',
    check: 'M5 12.5l4.2 4.2L19 7',
    checks: 'M2.5 12.5l4.2 4.2L16.5 7M11.8 16.2l.5.5L22 7',
    clock: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7.5V12l3 2',
    alert: 'M12 8.5v4.5M12 16.5v.5M10.3 3.9L2.6 17.5A2 2 0 0 0 4.3 20.5h15.4a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z',
    person: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4.5 20.5a7.5 7.5 0 0 1 15 0',
    bot: 'M12 3.5V6.5M7 7h10a3 3 0 0 1 3 3v6a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3v-6a3 3 0 0 1 3-3zM9 12v1M15 12v1M1.5 12.5v2M22.5 12.5v2',
    end: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9',
    more: 'M5 12h.01M12 12h.01M19 12h.01',
    file: 'M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8l-5-5zM14 3v5h5',
    star: 'M12 3.2l2.7 5.6 6.1.9-4.4 4.3 1 6.1L12 17.2l-5.4 2.9 1-6.1-4.4-4.3 6.1-.9L12 3.2z',
    wifi: 'M2 8.5a15 15 0 0 1 20 0M5.5 12a10 10 0 0 1 13 0M9 15.5a5 5 0 0 1 6 0M12 19h.01',
    plus: 'M12 5v14M5 12h14'
  };

  function icon(name, size) {
    var svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', String(size || 20));
    svg.setAttribute('height', String(size || 20));
    svg.setAttribute('fill', 'none');
    svg.setAttribute('stroke', 'currentColor');
    svg.setAttribute('stroke-width', '2');
    svg.setAttribute('stroke-linecap', 'round');
    svg.setAttribute('stroke-linejoin', 'round');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  /** h('div', {class: 'x', testid: 'y', on: {click: fn}}, child, 'text', …): text children become text nodes. */
  function h(tag, props) {
    var node = document.createElement(tag);
    props = props || {};
    for (var key in props) {
      if (!Object.prototype.hasOwnProperty.call(props, key)) continue;
      var value = props[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'testid') node.setAttribute('data-testid', value);
      else if (key === 'text') node.textContent = value;
      else if (key === 'on') {
        for (var ev in value) node.addEventListener(ev, value[ev]);
      } else if (key === 'hidden') node.hidden = !!value;
      else if (key === 'disabled') node.disabled = !!value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  /** Plain text with http(s) links made clickable; everything stays text nodes. */
  function richText(text) {
    var fragment = document.createDocumentFragment();
    var pattern = /\bhttps?:\/\/[^\s<>"']+/gi;
    var last = 0, match;
    while ((match = pattern.exec(text)) !== null) {
      var url = match[0].replace(/[.,;:!?)\]]+$/, '');
      if (match.index > last) fragment.appendChild(document.createTextNode(text.slice(last, match.index)));
      var a = document.createElement('a');
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      a.textContent = url;
      fragment.appendChild(a);
      last = match.index + url.length;
      pattern.lastIndex = last;
    }
    if (last < text.length) fragment.appendChild(document.createTextNode(text.slice(last)));
    return fragment;
  }

  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  var dayTimeFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit' });
  function formatTime(iso) {
    var date = iso ? new Date(iso) : new Date();
    if (isNaN(date.getTime())) return '';
    var today = new Date();
    return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dayTimeFormat.format(date);
  }
  function formatSize(bytes) {
    if (!(bytes >= 0)) return '';
    if (bytes < 1024) return bytes + ' B';
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + ' KB';
    return (bytes / 1024 / 1024).toFixed(1) + ' MB';
  }
  function initials(name) {
    var parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
    if (!parts.length) return '?';
    var first = parts[0].charAt(0);
    var second = parts.length > 1 ? parts[parts.length - 1].charAt(0) : '';
    return (first + second).toUpperCase();
  }
  /** The claims of a JWT, unverified (the server verifies); null if it is not one. */
  function jwtClaims(token) {
    try {
      var part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      while (part.length % 4) part += '=';
      var json = decodeURIComponent(Array.prototype.map.call(atob(part), function (c) {
        return '%' + ('00' + c.charCodeAt(0).toString(16)).slice(-2);
      }).join(''));
      var claims = JSON.parse(json);
      return claims && typeof claims === 'object' ? claims : null;
    } catch (e) {
      return null;
    }
  }

  function newId(prefix) {
    if (window.crypto && window.crypto.randomUUID) return prefix + window.crypto.randomUUID();
    return prefix + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
  }
  /** Same-origin-as-the-server URL for an attachment, with the token for <img src>. */
  function attachmentUrl(url, token) {
    try {
      var full = new URL(url, ORIGIN);
      if (full.origin !== ORIGIN || (full.protocol !== 'http:' && full.protocol !== 'https:')) return null;
      if (token) full.searchParams.set('token', token);
      return full.href;
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------- the DOM

  var host, root, els = {};

  function build() {
    host = document.createElement('switchboard-widget');
    host.setAttribute('data-testid', 'sb-widget');
    // Inline !important beats any host-page rule, so the host element itself cannot be hidden or restyled.
    host.style.cssText = 'all: initial !important; display: block !important; position: static !important; ' +
      'visibility: visible !important; opacity: 1 !important; transform: none !important; filter: none !important;';
    var shadow = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;

    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = ORIGIN + '/assets/widget.css';
    shadow.appendChild(link);

    root = h('div', { class: 'sb', 'data-position': config.position, 'data-state': 'idle', hidden: true });
    root.style.setProperty('--sb-accent', config.color);
    shadow.appendChild(root);
    var reveal = function () { root.hidden = false; };
    link.addEventListener('load', reveal);
    link.addEventListener('error', reveal);
    setTimeout(reveal, 4000);

    // launcher
    els.badge = h('span', { class: 'sb-badge', testid: 'sb-unread', hidden: true, 'aria-hidden': 'true' });
    els.launcher = h('button', {
      class: 'sb-launcher', type: 'button', testid: 'sb-launcher', 'aria-label': 'Open chat with ' + config.title,
      'aria-expanded': 'false', on: { click: toggle }
    }, h('span', { class: 'sb-launcher-open' }, icon('chat', 26)), h('span', { class: 'sb-launcher-close' }, icon('down', 26)), els.badge);

    // header
    els.headerAvatar = h('div', { class: 'sb-header-avatar', 'aria-hidden': 'true' });
    els.title = h('h2', { class: 'sb-title', testid: 'sb-title', id: 'sb-title', text: config.title });
    els.subtitle = h('p', { class: 'sb-subtitle', testid: 'sb-subtitle', text: config.subtitle });
    els.endButton = h('button', {
      class: 'sb-menu-item', type: 'button', role: 'menuitem', testid: 'sb-end-chat',
      on: { click: function () { closeMenu(); askEnd(); } }
    }, icon('end', 16), h('span', { text: 'End conversation' }));
    els.menu = h('div', { class: 'sb-menu', role: 'menu', testid: 'sb-menu', hidden: true }, els.endButton);
    els.menuButton = h('button', {
      class: 'sb-icon-button', type: 'button', testid: 'sb-menu-button', title: 'More options', 'aria-label': 'More options',
      'aria-haspopup': 'menu', 'aria-expanded': 'false', hidden: true,
      on: { click: function (event) { event.stopPropagation(); toggleMenu(); } }
    }, icon('more', 20));
    els.closeButton = h('button', {
      class: 'sb-icon-button', type: 'button', testid: 'sb-minimize', title: 'Minimise', 'aria-label': 'Minimise chat',
      on: { click: function () { setOpen(false); } }
    }, icon('close', 20));
    var header = h('header', { class: 'sb-header' },
      els.headerAvatar,
      h('div', { class: 'sb-heading' }, els.title, els.subtitle),
      h('div', { class: 'sb-header-actions' }, els.menuButton, els.closeButton), els.menu);

    // banners
    els.connection = h('div', { class: 'sb-banner sb-banner-warn', testid: 'sb-connection', role: 'status', hidden: true },
      icon('wifi', 16), h('span', { text: 'Reconnecting…' }));
    els.queueText = h('strong', { testid: 'sb-queue-position' });
    els.queue = h('div', { class: 'sb-banner sb-banner-queue', testid: 'sb-queue', role: 'status', hidden: true },
      h('span', { class: 'sb-pulse', 'aria-hidden': 'true' }),
      h('div', null, els.queueText, h('span', { text: 'A member of our team will be with you shortly.' })));
    els.confirm = h('div', { class: 'sb-banner sb-banner-confirm', testid: 'sb-end-confirm', hidden: true },
      h('span', { text: 'End this conversation?' }),
      h('div', { class: 'sb-confirm-actions' },
        h('button', { type: 'button', class: 'sb-link-button', text: 'Cancel', on: { click: function () { els.confirm.hidden = true; } } }),
        h('button', { type: 'button', class: 'sb-danger-button', testid: 'sb-end-confirm-yes', text: 'End chat', on: { click: endChat } })));

    // welcome card
    els.nameInput = h('input', {
      class: 'sb-input', id: 'sb-name', testid: 'sb-name', type: 'text', maxlength: '100', autocomplete: 'name',
      placeholder: 'Your name (optional)'
    });
    var knownName = config.name || (state.visitorName && state.visitorName !== 'Visitor' ? state.visitorName : '');
    if (knownName) els.nameInput.value = knownName;
    els.startError = h('p', { class: 'sb-error', testid: 'sb-start-error', role: 'alert', hidden: true });
    els.startButton = h('button', { class: 'sb-primary-button', type: 'submit', testid: 'sb-start' },
      h('span', { text: 'Start a conversation' }), icon('send', 18));
    els.welcome = h('form', { class: 'sb-welcome', testid: 'sb-welcome', on: { submit: onStart } },
      h('div', { class: 'sb-welcome-art', 'aria-hidden': 'true' }, icon('chat', 30)),
      h('h3', { class: 'sb-welcome-title', text: config.welcome }),
      h('p', { class: 'sb-welcome-text', text: 'Our assistant answers right away, and a person from our team is one click away.' }),
      h('label', { class: 'sb-label', for: 'sb-name', text: 'What should we call you?' }),
      els.nameInput, els.startError, els.startButton);

    // conversation
    els.messages = h('ol', { class: 'sb-messages', testid: 'sb-messages', 'aria-live': 'polite', 'aria-label': 'Conversation' });
    els.typingText = h('span', { class: 'sb-typing-text' });
    els.typing = h('div', { class: 'sb-typing', testid: 'sb-typing', hidden: true, 'aria-live': 'polite' },
      h('span', { class: 'sb-dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), els.typingText);

    // ended card with the rating
    els.stars = [];
    var starRow = h('div', { class: 'sb-stars', role: 'radiogroup', 'aria-label': 'Rate this conversation' });
    for (var n = 1; n <= 5; n++) {
      (function (value) {
        var star = h('button', {
          type: 'button', class: 'sb-star', role: 'radio', 'aria-checked': 'false', testid: 'sb-rating-' + value,
          'aria-label': value + (value === 1 ? ' star' : ' stars'),
          on: { click: function () { setRating(value); } }
        }, icon('star', 28));
        els.stars.push(star);
        starRow.appendChild(star);
      })(n);
    }
    els.ratingComment = h('textarea', {
      class: 'sb-input sb-textarea', testid: 'sb-rating-comment', rows: '2', maxlength: '1000',
      placeholder: 'Anything you would like to add? (optional)', 'aria-label': 'Comment', hidden: true
    });
    els.ratingSubmit = h('button', { type: 'submit', class: 'sb-primary-button', testid: 'sb-rating-submit', text: 'Send feedback', hidden: true });
    els.ratingStatus = h('p', { class: 'sb-rating-status', testid: 'sb-rating-status', role: 'status' });
    els.ratingForm = h('form', { class: 'sb-rating', testid: 'sb-rating', on: { submit: submitRating } },
      h('p', { class: 'sb-rating-title', text: 'How did we do?' }), starRow, els.ratingComment, els.ratingSubmit);
    // a copy of the conversation by email
    els.transcriptEmail = h('input', {
      class: 'sb-input', id: 'sb-transcript-email', testid: 'sb-transcript-email', type: 'email', maxlength: '254',
      autocomplete: 'email', placeholder: 'you@example.com', required: 'required'
    });
    if (config.email) els.transcriptEmail.value = config.email;
    els.transcriptSubmit = h('button', { type: 'submit', class: 'sb-secondary-button', testid: 'sb-transcript-submit', text: 'Send' });
    els.transcriptStatus = h('p', { class: 'sb-rating-status', testid: 'sb-transcript-status', role: 'status' });
    els.transcriptForm = h('form', { class: 'sb-transcript', testid: 'sb-transcript', on: { submit: requestTranscript } },
      h('label', { class: 'sb-label', for: 'sb-transcript-email', text: 'Email me the transcript' }),
      h('div', { class: 'sb-transcript-row' }, els.transcriptEmail, els.transcriptSubmit));
    els.endedText = h('p', { class: 'sb-ended-text', testid: 'sb-ended-text', text: 'This conversation has ended.' });
    els.ended = h('div', { class: 'sb-ended', testid: 'sb-ended', hidden: true },
      els.endedText, els.ratingForm, els.ratingStatus, els.transcriptForm, els.transcriptStatus,
      h('button', { type: 'button', class: 'sb-secondary-button', testid: 'sb-new-chat', on: { click: newConversation } },
        icon('plus', 16), h('span', { text: 'Start a new conversation' })));

    // offline form: nobody can answer now, so the customer may leave a message and an address
    els.offlineText = h('p', { class: 'sb-offline-title', testid: 'sb-offline-text' });
    els.offlineEmail = h('input', {
      class: 'sb-input', testid: 'sb-offline-email', type: 'email', maxlength: '254', autocomplete: 'email', required: true,
      placeholder: 'you@example.com', 'aria-label': 'Your email address'
    });
    els.offlineMessage = h('textarea', {
      class: 'sb-input sb-textarea', testid: 'sb-offline-message', rows: '3', maxlength: String(MAX_CONTENT), required: true,
      placeholder: 'How can we help?', 'aria-label': 'Your message'
    });
    els.offlineError = h('p', { class: 'sb-error', testid: 'sb-offline-error', role: 'alert', hidden: true });
    els.offlineSubmit = h('button', { type: 'submit', class: 'sb-primary-button', testid: 'sb-offline-submit', text: 'Leave a message' });
    els.offlineForm = h('form', { class: 'sb-offline-form', testid: 'sb-offline-form', on: { submit: leaveMessage } },
      h('p', { class: 'sb-offline-hint', text: 'Leave us a message and your email address: we will answer by email, and you will find our answer here too.' }),
      els.offlineEmail, els.offlineMessage, els.offlineError, els.offlineSubmit);
    els.offlineDone = h('p', { class: 'sb-offline-done', testid: 'sb-offline-done', role: 'status', hidden: true });
    els.offline = h('div', { class: 'sb-offline', testid: 'sb-offline', hidden: true },
      els.offlineText, els.offlineForm, els.offlineDone);

    els.conversation = h('div', { class: 'sb-conversation', hidden: true }, els.messages, els.typing, els.offline, els.ended);
    els.body = h('div', { class: 'sb-body' }, els.welcome, els.conversation);

    // drop zone
    els.body.addEventListener('dragover', function (event) {
      if (canAttach()) { event.preventDefault(); root.classList.add('sb-dragging'); }
    });
    els.body.addEventListener('dragleave', function () { root.classList.remove('sb-dragging'); });
    els.body.addEventListener('drop', function (event) {
      root.classList.remove('sb-dragging');
      if (!canAttach() || !event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      pickFile(event.dataTransfer.files[0]);
    });

    // talk to a person
    els.handoff = h('button', { type: 'button', class: 'sb-chip', testid: 'sb-talk-to-person', hidden: true, on: { click: talkToPerson } },
      icon('person', 16), h('span', { text: 'Talk to a person' }));
    els.chips = h('div', { class: 'sb-chips' }, els.handoff);

    // composer
    els.fileInput = h('input', {
      type: 'file', testid: 'sb-file', hidden: true, accept: 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,.csv,.docx,.xlsx,.odt,.ods',
      on: { change: function () { if (els.fileInput.files[0]) pickFile(els.fileInput.files[0]); els.fileInput.value = ''; } }
    });
    els.attachButton = h('button', {
      type: 'button', class: 'sb-icon-button sb-attach', testid: 'sb-attach', title: 'Attach a file', 'aria-label': 'Attach a file',
      on: { click: function () { els.fileInput.click(); } }
    }, icon('clip', 20));
    els.input = h('textarea', {
      class: 'sb-composer-input', testid: 'sb-input', rows: '1', maxlength: String(MAX_CONTENT),
      placeholder: 'Write a message…', 'aria-label': 'Message',
      on: { input: onInput, keydown: onKeydown, paste: onPaste }
    });
    els.send = h('button', { type: 'submit', class: 'sb-send', testid: 'sb-send', title: 'Send', 'aria-label': 'Send message' }, icon('send', 20));
    els.preview = h('div', { class: 'sb-attachment-preview', testid: 'sb-attachment-preview', hidden: true });
    els.composerError = h('p', { class: 'sb-composer-error', testid: 'sb-composer-error', role: 'alert', hidden: true });
    els.composer = h('form', { class: 'sb-composer', testid: 'sb-composer', hidden: true, on: { submit: onSubmit } },
      els.preview, els.composerError,
      h('div', { class: 'sb-composer-row' }, els.attachButton, els.fileInput, els.input, els.send));

    els.panel = h('section', {
      class: 'sb-panel', testid: 'sb-panel', role: 'dialog', 'aria-labelledby': 'sb-title', hidden: true
    }, header, els.connection, els.queue, els.confirm, els.body, els.chips, els.composer,
      h('footer', { class: 'sb-footer' }, h('span', { text: 'Powered by ' }), h('strong', { text: 'Switchboard' })));

    root.appendChild(els.panel);
    root.appendChild(els.launcher);
    document.body.appendChild(host);

    root.addEventListener('keydown', function (event) {
      if (event.key !== 'Escape') return;
      if (!els.menu.hidden) { closeMenu(); els.menuButton.focus(); return; }
      if (state.open) { setOpen(false); els.launcher.focus(); }
    });
    root.addEventListener('click', function (event) {
      if (!els.menu.hidden && !els.menu.contains(event.target)) closeMenu();
    });

    // Readable text on the accent colour.
    var probe = h('span');
    probe.style.color = config.color;
    root.appendChild(probe);
    var rgb = getComputedStyle(probe).color.match(/\d+(\.\d+)?/g);
    root.removeChild(probe);
    if (rgb && rgb.length >= 3) {
      var lum = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
      root.style.setProperty('--sb-on-accent', lum > 0.62 ? '#111827' : '#ffffff');
    }
    renderHeader();
  }

  // ---------------------------------------------------------------- state

  var stored = readStore();
  var state = {
    open: false,
    token: stored.token || null,
    userId: stored.userId || null,
    visitorName: stored.name || null,
    expiresAt: stored.expiresAt || null,
    sessionId: stored.sessionId || null,
    status: null,            // bot | waiting | assigned | closed | offline
    offer: null,             // {reason, opensAt}: nobody can answer now (session:offline)
    leftAt: null,            // the address the customer left a message for
    agentName: null,
    queuePosition: null,
    maxSeq: 0,               // the highest seq rendered in this page
    readByAgent: 0,          // the agent has read up to this seq
    markedRead: 0,           // what we told the server we read
    unread: 0,
    starting: false,
    resumed: false,
    rating: 0,
    pendingFile: null
  };
  var messages = {};         // messageId -> true
  var seqs = {};             // seq -> li
  var drafts = {};           // draftId -> {li, text}: bot answers still being written
  var outbox = [];           // {clientMsgId, content, attachments, el, state}

  // ---------------------------------------------------------------- socket

  var ws = null;
  var connected = false;
  var wanted = false;        // keep a socket open
  var attempts = 0;
  var failedOpens = 0;
  var reconnectTimer = null;
  var bannerTimer = null;
  var refs = {};
  var refCounter = 0;
  var wsToken = null;        // the token the current socket was opened with

  /** Opens a new socket if the current one belongs to another token. */
  function reconnectIfTokenChanged() {
    if (ws && wsToken !== state.token) {
      var old = ws;
      ws = null;
      connected = false;
      old.onclose = null;
      old.close(1000);
      state.resumed = false;
      for (var ref in refs) refs[ref].reject({ code: 'disconnected', message: 'reconnecting as another visitor' });
      refs = {};
      outbox.forEach(function (item) { if (item.state === 'sending') item.state = 'queued'; });
    }
  }

  function connect() {
    wanted = true;
    if (ws || !state.token) return;
    clearTimeout(reconnectTimer);
    var socket = new WebSocket(WS_ORIGIN + '/ws/customer?token=' + encodeURIComponent(state.token));
    ws = socket;
    wsToken = state.token;
    var opened = false;
    socket.onopen = function () {
      opened = true;
      connected = true;
      attempts = 0;
      failedOpens = 0;
      clearTimeout(bannerTimer);
      els.connection.hidden = true;
      root.setAttribute('data-connection', 'open');
      onConnected();
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handleFrame(frame);
    };
    socket.onclose = function () {
      if (ws !== socket) return;
      ws = null;
      connected = false;
      // A resume sends any draft again, whole.
      dropDrafts();
      state.resumed = false;
      root.setAttribute('data-connection', 'closed');
      for (var ref in refs) {
        refs[ref].reject({ code: 'disconnected', message: 'the connection was lost' });
      }
      refs = {};
      outbox.forEach(function (item) { if (item.state === 'sending') item.state = 'queued'; });
      if (wanted) scheduleReconnect(!opened);
    };
  }

  function scheduleReconnect(refused) {
    clearTimeout(reconnectTimer);
    attempts++;
    var delay = Math.min(10000, 400 * Math.pow(1.8, attempts - 1)) * (0.75 + Math.random() * 0.5);
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(function () { if (!connected && wanted) els.connection.hidden = false; }, 1200);
    reconnectTimer = setTimeout(function () {
      if (refused) checkToken().then(connect, connect);
      else connect();
    }, delay);
  }

  function reconnectNow() {
    if (!wanted || ws) return;
    attempts = 0;
    connect();
  }

  function request(event, payload) {
    return new Promise(function (resolve, reject) {
      if (!ws || !connected) {
        reject({ code: 'disconnected', message: 'not connected' });
        return;
      }
      var ref = 'w' + (++refCounter);
      refs[ref] = { resolve: resolve, reject: reject };
      ws.send(JSON.stringify({ event: event, ref: ref, data: payload || {} }));
      setTimeout(function () {
        if (refs[ref]) {
          delete refs[ref];
          reject({ code: 'timeout', message: 'the server did not answer' });
        }
      }, 20000);
    });
  }

  function handleFrame(frame) {
    var ref = frame.ref;
    var pending = ref && refs[ref];
    if (pending) delete refs[ref];
    if (frame.event === 'error') {
      if (pending) pending.reject(frame.data || {});
      return;
    }
    dispatch(frame.event, frame.data || {});
    if (pending) pending.resolve(frame);
  }

  function dispatch(event, d) {
    if (d.sessionId && d.sessionId !== state.sessionId) return;
    switch (event) {
      case 'message:received': addMessage(d, true); break;
      case 'message:delta': growDraft(d); break;
      case 'message:draft_discarded': dropDraft(d.draftId); break;
      case 'message:sent': acknowledge(d); break;
      case 'messages:cleared': clearShownMessages(); break;
      case 'status:changed':
        setStatus(d.status, { agentName: d.agentName, queuePosition: d.queuePosition });
        break;
      case 'queue:position': setStatus('waiting', { queuePosition: d.position }); break;
      case 'user_typing': if (d.role !== 'customer') showTyping(d.name); break;
      case 'typing_stopped': if (d.role !== 'customer') hideTyping(); break;
      case 'messages_read':
        if (d.role !== 'customer' && d.upToSeq > state.readByAgent) {
          state.readByAgent = d.upToSeq;
          refreshReceipts();
        }
        break;
      case 'session:closed': setStatus('closed', { reason: d.reason }); break;
      case 'session:offline': offerOffline(d); break;
      default: break;
    }
  }

  // The socket was refused before it opened. While the server is down that is
  // expected; but a healthy server that refuses the socket twice in a row no
  // longer accepts the token (revoked, or the server's secret changed), so we
  // ask for a fresh one.
  function checkToken() {
    return fetch(ORIGIN + '/health', { cache: 'no-store' }).then(function (response) {
      if (!response.ok) { failedOpens = 0; return; }
      failedOpens++;
      if (failedOpens < 2) return;
      failedOpens = 0;
      return refreshToken();
    }).catch(function () { failedOpens = 0; /* the server is down: keep trying */ });
  }

  // A returning visitor sends their previous token and keeps their identity;
  // a token the server no longer accepts is replaced by a new visitor's.
  function refreshToken(fresh) {
    if (config.token) {
      // The host site owns this visitor's identity: only it can give a new token.
      return Promise.reject(new Error('the host page must provide a new token'));
    }
    var headers = { 'Content-Type': 'application/json' };
    if (state.token && !fresh) headers.Authorization = 'Bearer ' + state.token;
    var body = {};
    var name = state.visitorName || config.name;
    if (name && name !== 'Visitor') body.name = name;
    if (config.email) body.email = config.email;
    return fetch(ORIGIN + '/api/auth/visitor', { method: 'POST', headers: headers, body: JSON.stringify(body) })
      .then(function (response) {
        if ((response.status === 401 || response.status === 403) && headers.Authorization) return refreshToken(true).then(function () { return null; });
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (visitor) {
        if (!visitor) return;
        var sameUser = !state.userId || visitor.userId === state.userId;
        state.token = visitor.token;
        state.userId = visitor.userId;
        state.visitorName = visitor.name;
        state.expiresAt = visitor.expiresAt;
        writeStore({ token: visitor.token, userId: visitor.userId, name: visitor.name, expiresAt: visitor.expiresAt });
        if (!sameUser && state.sessionId) {
          forgetSession();
          showWelcome('We could not restore your previous conversation. Start a new one below.');
        }
      });
  }

  function tokenFresh() {
    if (!state.token || !state.expiresAt) return !!state.token;
    var left = new Date(state.expiresAt).getTime() - Date.now();
    // A host site's token is theirs to renew; a visitor token is renewed during its last week.
    return config.token ? left > 0 : left > 7 * 24 * 3600 * 1000;
  }

  function ensureToken() {
    if (tokenFresh()) return Promise.resolve();
    return refreshToken();
  }

  // ---------------------------------------------------------------- session flow

  function onConnected() {
    if (state.sessionId) {
      var sessionId = state.sessionId;
      request('customer:resume', { sessionId: sessionId, afterSeq: state.maxSeq })
        .then(function (frame) {
          var d = frame.data;
          state.resumed = true;
          (d.messages || []).forEach(function (m) { addMessage(m, false); });
          var session = d.session || {};
          setStatus(session.status, { agentName: session.agentName, reason: session.endedReason, quiet: true });
          if (session.status === 'closed' && !state.open) { disconnect(); return; }
          flushOutbox();
          if (session.status === 'waiting') {
            request('customer:request_agent', { sessionId: sessionId }).catch(function () {});
          }
          markRead();
        })
        .catch(function (error) {
          if (error.code === 'forbidden' || error.code === 'session_not_found') {
            forgetSession();
            showWelcome('Your previous conversation is no longer available. Start a new one below.');
          }
        });
    } else if (state.starting) {
      startSession();
    } else if (!state.open) {
      disconnect();
    }
  }

  function onStart(event) {
    event.preventDefault();
    els.startError.hidden = true;
    els.startButton.disabled = true;
    var name = els.nameInput.value.trim();
    var changedName = name && state.visitorName && name !== state.visitorName;
    if (!state.token || changedName) {
      if (changedName) { state.token = null; state.userId = null; }
      state.visitorName = name || null;
    }
    state.starting = true;
    var ready = state.token && tokenFresh() ? Promise.resolve() : refreshToken();
    ready.then(function () {
      showConversation();
      reconnectIfTokenChanged();
      if (connected) startSession(); else connect();
    }).catch(function () {
      state.starting = false;
      els.startButton.disabled = false;
      els.startError.textContent = 'We could not reach our chat service. Please try again in a moment.';
      els.startError.hidden = false;
    });
  }

  function startSession() {
    var metadata = {
      page: String(location.href).slice(0, 500),
      pageTitle: String(document.title || '').slice(0, 200),
      referrer: String(document.referrer || '').slice(0, 500),
      language: navigator.language || ''
    };
    var payload = { metadata: metadata };
    if (config.botContext) payload.botContext = config.botContext;
    if (config.team) payload.team = config.team;
    request('customer:start_chat', payload).then(function (frame) {
      state.starting = false;
      els.startButton.disabled = false;
      state.sessionId = frame.data.sessionId;
      state.resumed = true;
      writeStore({ sessionId: state.sessionId, lastSeq: 0 });
      setStatus(frame.data.status || 'bot', { quiet: true });
      flushOutbox();
      if (state.open) els.input.focus();
    }).catch(function (error) {
      if (error.code === 'disconnected' || error.code === 'timeout') return; // retried on reconnect
      state.starting = false;
      els.startButton.disabled = false;
      showWelcome('Sorry, the chat could not start (' + (error.message || error.code) + ').');
    });
  }

  function forgetSession() {
    state.sessionId = null;
    state.status = null;
    state.agentName = null;
    state.queuePosition = null;
    state.maxSeq = 0;
    state.readByAgent = 0;
    state.markedRead = 0;
    state.resumed = false;
    state.rating = 0;
    messages = {};
    seqs = {};
    drafts = {};
    outbox = [];
    clear(els.messages);
    hideTyping();
    writeStore({ sessionId: undefined, lastSeq: undefined, outbox: undefined, closed: undefined });
    renderHeader();
  }

  function newConversation() {
    forgetSession();
    state.starting = true;
    showConversation();
    if (connected) startSession(); else connect();
  }

  function talkToPerson() {
    if (!state.sessionId) return;
    els.handoff.disabled = true;
    request('customer:request_agent', { sessionId: state.sessionId })
      .catch(function (error) { showComposerError(error.message || 'Could not reach a person right now. Please try again.'); })
      .then(function () { els.handoff.disabled = false; });
  }

  function toggleMenu() {
    if (els.menu.hidden) {
      els.menu.hidden = false;
      els.menuButton.setAttribute('aria-expanded', 'true');
      els.endButton.focus();
    } else {
      closeMenu();
    }
  }

  function closeMenu() {
    els.menu.hidden = true;
    els.menuButton.setAttribute('aria-expanded', 'false');
  }

  function askEnd() {
    els.confirm.hidden = false;
    var yes = els.confirm.querySelector('[data-testid="sb-end-confirm-yes"]');
    if (yes) yes.focus();
  }

  function endChat() {
    els.confirm.hidden = true;
    if (!state.sessionId) return;
    request('customer:end_chat', { sessionId: state.sessionId }).catch(function (error) {
      if (error.code === 'session_closed') setStatus('closed', {});
      else showComposerError('The chat could not be ended: ' + (error.message || error.code));
    });
  }

  function setStatus(status, info) {
    if (!status) return;
    info = info || {};
    var previous = state.status;
    state.status = status;
    if (status === 'assigned' && info.agentName) state.agentName = info.agentName;
    if (status === 'waiting') {
      state.agentName = null;
      if (typeof info.queuePosition === 'number') state.queuePosition = info.queuePosition;
    } else {
      state.queuePosition = null;
    }
    if (status === 'assigned' || status === 'closed') state.offer = null;
    if (status === 'closed') {
      writeStore({ closed: true });
      hideTyping();
      outbox.forEach(function (item) { markFailed(item, 'Not delivered: the chat has ended.'); });
      outbox = [];
      saveOutbox();
      showEnded(info.reason, previous !== 'closed' && !info.quiet);
    }
    renderHeader();
  }

  function renderHeader() {
    if (!els.panel) return;
    var status = state.status;
    clear(els.headerAvatar);
    root.setAttribute('data-state', status || 'idle');
    if (status === 'assigned' && state.agentName) {
      els.headerAvatar.className = 'sb-header-avatar sb-avatar-agent';
      els.headerAvatar.textContent = initials(state.agentName);
      els.subtitle.textContent = '';
      els.subtitle.appendChild(h('span', { class: 'sb-online-dot', 'aria-hidden': 'true' }));
      els.subtitle.appendChild(h('span', { testid: 'sb-agent-name', text: state.agentName }));
      els.subtitle.appendChild(document.createTextNode(' is helping you'));
    } else if (status === 'waiting') {
      els.headerAvatar.className = 'sb-header-avatar';
      els.headerAvatar.appendChild(icon('clock', 22));
      els.subtitle.textContent = 'Connecting you with our team…';
    } else if (status === 'bot') {
      els.headerAvatar.className = 'sb-header-avatar';
      els.headerAvatar.appendChild(icon('bot', 22));
      els.subtitle.textContent = 'Our assistant replies instantly';
    } else if (status === 'closed') {
      els.headerAvatar.className = 'sb-header-avatar';
      els.headerAvatar.appendChild(icon('chat', 22));
      els.subtitle.textContent = 'Conversation ended';
    } else if (status === 'offline') {
      els.headerAvatar.className = 'sb-header-avatar';
      els.headerAvatar.appendChild(icon('clock', 22));
      els.subtitle.textContent = 'We\'ll answer by email';
    } else {
      els.headerAvatar.className = 'sb-header-avatar';
      els.headerAvatar.appendChild(icon('chat', 22));
      els.subtitle.textContent = config.subtitle;
    }
    var live = !!state.sessionId && status !== 'closed' && status !== null;
    els.menuButton.hidden = !live;
    if (!live) closeMenu();
    els.handoff.hidden = !(live && status === 'bot');
    els.chips.hidden = els.handoff.hidden;
    els.composer.hidden = !(state.sessionId || state.starting) || status === 'closed';
    if (status !== 'closed') els.ended.hidden = true;
    els.queue.hidden = status !== 'waiting' || !!state.offer;
    renderOffline();
    els.queueText.textContent = state.queuePosition
      ? (state.queuePosition === 1 ? 'You\'re next in line' : 'You\'re number ' + state.queuePosition + ' in line')
      : 'Waiting for the next available person';
    els.queueText.setAttribute('data-position', state.queuePosition ? String(state.queuePosition) : '');
    updateAttachAvailability();
  }

  // ---------------------------------------------------------------- views

  function showWelcome(message) {
    els.welcome.hidden = false;
    els.conversation.hidden = true;
    els.composer.hidden = true;
    els.chips.hidden = true;
    els.startButton.disabled = false;
    if (message) {
      els.startError.textContent = message;
      els.startError.hidden = false;
    }
    renderHeader();
  }

  function showConversation() {
    els.welcome.hidden = true;
    els.conversation.hidden = false;
    renderHeader();
  }

  // Nobody can answer now: say why, and offer the form (once a message is
  // left, the confirmation instead).
  function offerOffline(d) {
    if (state.status !== 'bot' && state.status !== 'waiting') return;
    state.offer = { reason: d.reason, opensAt: d.opensAt || null };
    renderHeader();
    scrollToEnd(true);
  }

  function opening(iso) {
    var at = new Date(iso);
    if (isNaN(at.getTime())) return '';
    var soon = at.getTime() - Date.now() < 6 * 24 * 3600 * 1000;
    var options = soon
      ? { weekday: 'long', hour: '2-digit', minute: '2-digit' }
      : { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' };
    return at.toLocaleString(undefined, options);
  }

  function renderOffline() {
    var left = state.status === 'offline';
    var offered = !!state.offer && (state.status === 'bot' || state.status === 'waiting');
    els.offline.hidden = !(left || offered);
    if (els.offline.hidden) return;
    els.offlineForm.hidden = left;
    els.offlineDone.hidden = !left;
    if (left) {
      els.offlineText.textContent = 'Thanks, we have your message.';
      els.offlineDone.textContent = state.leftAt
        ? 'We will answer at ' + state.leftAt + '. You will also find our answer here when you come back.'
        : 'We will answer by email. You will also find our answer here when you come back.';
      return;
    }
    var offer = state.offer;
    if (offer.reason === 'closed') {
      var when = offer.opensAt ? opening(offer.opensAt) : '';
      els.offlineText.textContent = when ? 'We\'re closed now — we open ' + when + '.' : 'We\'re closed now.';
    } else {
      els.offlineText.textContent = 'No one is available right now.';
    }
  }

  function leaveMessage(event) {
    event.preventDefault();
    var email = els.offlineEmail.value.trim();
    var content = els.offlineMessage.value.trim();
    els.offlineError.hidden = true;
    if (!email || !content) {
      els.offlineError.textContent = 'Please give your email address and a message.';
      els.offlineError.hidden = false;
      return;
    }
    els.offlineSubmit.disabled = true;
    request('customer:leave_message', {
      sessionId: state.sessionId, email: email, content: content, clientMsgId: newId('offline')
    }).then(function () {
      state.leftAt = email;
      state.offer = null;
      els.offlineMessage.value = '';
      setStatus('offline');
    }).catch(function (error) {
      els.offlineError.textContent = error.code === 'invalid_email'
        ? 'Please check your email address.'
        : (error.message || 'Your message could not be sent. Please try again.');
      els.offlineError.hidden = false;
    }).then(function () { els.offlineSubmit.disabled = false; scrollToEnd(true); });
  }

  function showEnded(reason, fresh) {
    var text = {
      customer_ended: 'You ended this conversation.',
      resolved: 'The agent marked this conversation as resolved.',
      closed_by_agent: 'The agent closed this conversation.',
      abandoned: 'This conversation was closed after a period of inactivity.'
    }[reason] || 'This conversation has ended.';
    els.endedText.textContent = text;
    var rated = (readStore().rated || []).indexOf(state.sessionId) >= 0;
    els.ratingForm.hidden = rated;
    els.ratingStatus.textContent = rated ? 'Thanks for your feedback!' : '';
    if (fresh) setRating(0);
    if (fresh) {
      els.transcriptForm.hidden = false;
      els.transcriptStatus.textContent = '';
    }
    els.ended.hidden = false;
    scrollToEnd(true);
  }

  function setRating(value) {
    state.rating = value;
    els.stars.forEach(function (star, index) {
      star.setAttribute('aria-checked', index + 1 === value ? 'true' : 'false');
      star.classList.toggle('sb-star-on', index < value);
    });
    els.ratingComment.hidden = value === 0;
    els.ratingSubmit.hidden = value === 0;
    if (value) scrollToEnd(true);
  }

  function submitRating(event) {
    event.preventDefault();
    if (!state.rating || !state.sessionId) return;
    var sessionId = state.sessionId;
    var body = { rating: state.rating };
    var comment = els.ratingComment.value.trim();
    if (comment) body.comment = comment.slice(0, 1000);
    els.ratingSubmit.disabled = true;
    els.ratingStatus.textContent = 'Sending…';
    fetch(ORIGIN + '/api/sessions/' + encodeURIComponent(sessionId) + '/rating', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + state.token },
      body: JSON.stringify(body)
    }).then(function (response) {
      // 409: rated already (from another tab); the rating stands.
      if (!response.ok && response.status !== 409) {
        var err = new Error('HTTP ' + response.status);
        err.status = response.status;
        throw err;
      }
      var rated = readStore().rated || [];
      rated.push(sessionId);
      writeStore({ rated: rated.slice(-20) });
      els.ratingForm.hidden = true;
      els.ratingStatus.textContent = 'Thanks for your feedback!';
    }).catch(function (error) {
      var unavailable = error.status === 404 || error.status === 405;
      if (unavailable) els.ratingForm.hidden = true;
      els.ratingStatus.textContent = unavailable
        ? 'Ratings are not available right now, but thank you!'
        : 'We could not send your rating. Please try again.';
    }).then(function () { els.ratingSubmit.disabled = false; scrollToEnd(true); });
  }

  /** Asks the server to email this chat's transcript (202: queued, sent shortly). */
  function requestTranscript(event) {
    event.preventDefault();
    var email = els.transcriptEmail.value.trim();
    if (!email || !state.sessionId) return;
    els.transcriptSubmit.disabled = true;
    els.transcriptStatus.textContent = 'Sending…';
    fetch(ORIGIN + '/api/sessions/' + encodeURIComponent(state.sessionId) + '/transcript', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + state.token },
      body: JSON.stringify({ email: email })
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 202) {
          els.transcriptForm.hidden = true;
          els.transcriptStatus.textContent = 'The transcript is on its way to ' + (body.to || email) + '.';
          return;
        }
        var messages = {
          invalid_email: 'That does not look like an email address.',
          limit_reached: 'This transcript has already been sent as often as we allow.',
          mail_unavailable: 'Transcripts by email are not available right now.',
          rate_limited: 'You have asked for several transcripts already. Please try again later.'
        };
        if (body.error === 'mail_unavailable' || body.error === 'limit_reached') els.transcriptForm.hidden = true;
        els.transcriptStatus.textContent = messages[body.error] || 'We could not send the transcript. Please try again.';
      });
    }).catch(function () {
      els.transcriptStatus.textContent = 'We could not send the transcript. Please try again.';
    }).then(function () { els.transcriptSubmit.disabled = false; scrollToEnd(true); });
  }

  // ---------------------------------------------------------------- messages

  function senderLabel(m) {
    if (m.sender === 'customer') return 'You';
    if (m.sender === 'bot') return m.senderName || 'Assistant';
    if (m.sender === 'agent') return m.senderName || 'Agent';
    if (m.sender === 'partner') return m.senderName || 'Partner';
    return '';
  }

  function messageElement(m, mine) {
    var system = m.sender === 'system' || m.messageType === 'system';
    var li = h('li', {
      class: 'sb-msg sb-from-' + (system ? 'system' : m.sender) + (mine ? ' sb-mine' : ''),
      testid: 'sb-message', 'data-sender': system ? 'system' : m.sender
    });
    if (system) {
      li.appendChild(h('div', { class: 'sb-system-text', testid: 'sb-message-text' }, m.content || ''));
      li.appendChild(h('time', { class: 'sb-system-time', datetime: m.createdAt || '', text: formatTime(m.createdAt) }));
      return li;
    }
    var avatar = null;
    if (!mine) {
      avatar = h('div', { class: 'sb-msg-avatar', 'aria-hidden': 'true' });
      if (m.sender === 'bot') avatar.appendChild(icon('bot', 16));
      else avatar.textContent = initials(m.senderName);
    }
    var bubble = h('div', { class: 'sb-bubble', testid: 'sb-message-text' });
    bubble.appendChild(richText(m.content || ''));
    var tag = m.sender === 'bot' ? 'Bot' : (m.sender === 'agent' ? 'Team' : (m.sender === 'partner' ? 'Partner' : null));
    var meta = h('div', { class: 'sb-msg-meta' },
      h('span', { class: 'sb-msg-name', testid: 'sb-message-sender', text: senderLabel(m) }),
      tag ? h('span', { class: 'sb-tag', text: tag }) : null,
      h('time', { class: 'sb-msg-time', datetime: m.createdAt || '', text: formatTime(m.createdAt) }));
    var main = h('div', { class: 'sb-msg-main' }, meta, bubble, attachmentList(m.attachments));
    if (mine) main.appendChild(h('div', { class: 'sb-receipt', testid: 'sb-receipt' }));
    append(li, [avatar, main]);
    return li;
  }

  function attachmentList(list) {
    if (!list || !list.length) return null;
    var box = h('div', { class: 'sb-attachments' });
    list.forEach(function (a) {
      var href = attachmentUrl(a.url || ('/api/attachments/' + a.attachmentId), state.token);
      if (!href) return;
      if (/^image\//.test(a.contentType || '')) {
        box.appendChild(h('a', { class: 'sb-attachment-image', href: href, target: '_blank', rel: 'noopener noreferrer', testid: 'sb-attachment', title: a.fileName || 'image' },
          h('img', { src: href, alt: a.fileName || 'Attached image', loading: 'lazy' })));
      } else {
        box.appendChild(h('a', { class: 'sb-attachment-file', href: href, target: '_blank', rel: 'noopener noreferrer', testid: 'sb-attachment' },
          icon('file', 18), h('span', { class: 'sb-file-name', text: a.fileName || 'file' }), h('span', { class: 'sb-file-size', text: formatSize(a.sizeBytes) })));
      }
    });
    return box;
  }

  /** Inserts a stored message in seq order, before any still-unconfirmed message. */
  function placeBySeq(li, seq) {
    var children = els.messages.children;
    for (var i = 0; i < children.length; i++) {
      var other = children[i];
      var otherSeq = Number(other.getAttribute('data-seq'));
      if (!otherSeq || otherSeq > seq) { els.messages.insertBefore(li, other); return; }
    }
    els.messages.appendChild(li);
  }

  function regroup() {
    var previous = null;
    var children = els.messages.children;
    for (var i = 0; i < children.length; i++) {
      var li = children[i];
      var sender = li.getAttribute('data-sender');
      var name = li.querySelector('.sb-msg-name');
      var key = sender + '|' + (name ? name.textContent : '');
      li.classList.toggle('sb-continued', sender !== 'system' && previous === key);
      var next = children[i + 1];
      var nextName = next && next.querySelector('.sb-msg-name');
      var nextKey = next ? next.getAttribute('data-sender') + '|' + (nextName ? nextName.textContent : '') : null;
      li.classList.toggle('sb-run-end', nextKey !== key);
      previous = key;
    }
  }

  // The chat's messages were cleared on the server: what was shown goes;
  // seq numbering goes on, so nothing comes back on a resume.
  function clearShownMessages() {
    Object.keys(seqs).forEach(function (seq) { seqs[seq].remove(); });
    messages = {};
    seqs = {};
    regroup();
  }

  // The bot's answer as it is written: one bubble that grows, replaced by
  // the stored message (same draftId) or dropped if it is discarded.
  function growDraft(d) {
    if (!d || !d.draftId || typeof d.text !== 'string') return;
    if (d.sessionId && state.sessionId && d.sessionId !== state.sessionId) return;
    var draft = drafts[d.draftId];
    if (!draft) {
      var li = messageElement({ sender: 'bot', senderName: state.botName, createdAt: new Date().toISOString() }, false);
      li.classList.add('sb-draft');
      li.setAttribute('data-testid', 'sb-draft');
      li.setAttribute('aria-busy', 'true');
      draft = drafts[d.draftId] = { li: li, text: '' };
      els.messages.appendChild(li);
      hideTyping();
    }
    draft.text += d.text;
    var bubble = draft.li.querySelector('.sb-bubble');
    clear(bubble);
    bubble.appendChild(richText(draft.text));
    regroup();
    scrollToEnd(false);
  }

  function dropDraft(draftId) {
    var draft = drafts[draftId];
    if (!draft) return;
    draft.li.remove();
    delete drafts[draftId];
    regroup();
  }

  function dropDrafts() {
    Object.keys(drafts).forEach(dropDraft);
  }

  function addMessage(m, live) {
    if (!m || !m.messageId || typeof m.seq !== 'number') return;
    if (m.sessionId && state.sessionId && m.sessionId !== state.sessionId) return;
    if (m.draftId) dropDraft(m.draftId);
    if (m.sender === 'bot' && m.senderName) state.botName = m.senderName;
    if (messages[m.messageId] || seqs[m.seq]) return; // already shown
    var mine = m.sender === 'customer';
    var li = messageElement(m, mine);
    li.setAttribute('data-seq', String(m.seq));
    li.setAttribute('data-message-id', m.messageId);
    messages[m.messageId] = true;
    seqs[m.seq] = li;
    placeBySeq(li, m.seq);
    if (mine) setReceipt(li, m.seq <= state.readByAgent ? 'read' : 'sent');
    regroup();
    noteSeq(m.seq);
    if (m.sender === 'agent' || m.sender === 'partner' || m.sender === 'bot' || m.sender === 'system') {
      if (m.sender === 'agent' || m.sender === 'partner') hideTyping();
      if (live && !isVisible()) {
        if (m.sender !== 'system') {
          state.unread++;
          renderBadge();
        }
      }
    }
    scrollToEnd(mine || live);
    if (live) markRead();
  }

  function noteSeq(seq) {
    if (seq > state.maxSeq) {
      state.maxSeq = seq;
      writeStore({ lastSeq: seq });
    }
  }

  function setReceipt(li, status) {
    var box = li.querySelector('.sb-receipt');
    if (!box) return;
    li.setAttribute('data-status', status);
    clear(box);
    var label = { sending: 'Sending', sent: 'Sent', read: 'Read', failed: 'Not delivered' }[status];
    box.setAttribute('title', label);
    box.setAttribute('aria-label', label);
    if (status === 'sending') box.appendChild(icon('clock', 14));
    else if (status === 'sent') box.appendChild(icon('check', 15));
    else if (status === 'read') { box.appendChild(icon('checks', 15)); box.appendChild(h('span', { text: 'Read' })); }
  }

  function refreshReceipts() {
    for (var seq in seqs) {
      var li = seqs[seq];
      if (li.classList.contains('sb-mine') && Number(seq) <= state.readByAgent) setReceipt(li, 'read');
    }
  }

  function scrollToEnd(force) {
    var box = els.body;
    var near = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
    if (force || near) {
      requestAnimationFrame(function () { box.scrollTop = box.scrollHeight; });
    }
  }

  // ---------------------------------------------------------------- sending

  function saveOutbox() {
    writeStore({
      outbox: outbox.length ? outbox.map(function (item) {
        return { clientMsgId: item.clientMsgId, content: item.content, attachments: item.attachments, shown: item.shown };
      }) : undefined
    });
  }

  function queueMessage(content, attachments, shown) {
    var item = {
      clientMsgId: newId('m-'),
      content: content,
      attachments: attachments && attachments.length ? attachments : null,
      shown: shown || null,
      state: 'queued'
    };
    item.el = messageElement({ sender: 'customer', content: content, createdAt: new Date().toISOString(), attachments: shown }, true);
    item.el.setAttribute('data-client-msg-id', item.clientMsgId);
    setReceipt(item.el, 'sending');
    els.messages.appendChild(item.el);
    regroup();
    outbox.push(item);
    saveOutbox();
    scrollToEnd(true);
    flushOutbox();
  }

  function flushOutbox() {
    if (!connected || !state.sessionId || !state.resumed) return;
    outbox.forEach(function (item) {
      if (item.state !== 'queued') return;
      item.state = 'sending';
      var payload = { sessionId: state.sessionId, content: item.content, clientMsgId: item.clientMsgId };
      if (item.attachments) payload.attachments = item.attachments;
      request('customer:send_message', payload).catch(function (error) {
        if (outbox.indexOf(item) < 0) return;
        if (error.code === 'disconnected') { item.state = 'queued'; return; }
        if (error.code === 'rate_limited') {
          var wait = Math.max(1, Number(error.retryAfter) || 5);
          item.state = 'queued';
          showComposerError('You are sending messages very quickly. We will send this one in ' + Math.ceil(wait) + ' s.');
          setTimeout(function () { hideComposerError(); flushOutbox(); }, wait * 1000);
          return;
        }
        if (error.code === 'timeout' || error.code === 'database_unavailable' || error.code === 'internal') {
          item.state = 'queued';
          setTimeout(flushOutbox, 1500);
          return;
        }
        outbox.splice(outbox.indexOf(item), 1);
        saveOutbox();
        markFailed(item, error.code === 'session_closed' ? 'Not delivered: the chat has ended.' : (error.message || 'Not delivered.'));
      });
    });
  }

  function acknowledge(d) {
    var item = null;
    for (var i = 0; i < outbox.length; i++) {
      if (outbox[i].clientMsgId === d.clientMsgId) { item = outbox[i]; outbox.splice(i, 1); break; }
    }
    if (!item) return;
    saveOutbox();
    if (messages[d.messageId] || seqs[d.seq]) {
      // The resumed history already holds it.
      if (item.el.parentNode) item.el.parentNode.removeChild(item.el);
      regroup();
      return;
    }
    messages[d.messageId] = true;
    seqs[d.seq] = item.el;
    item.el.setAttribute('data-seq', String(d.seq));
    item.el.setAttribute('data-message-id', d.messageId);
    var time = item.el.querySelector('.sb-msg-time');
    if (time && d.createdAt) { time.textContent = formatTime(d.createdAt); time.setAttribute('datetime', d.createdAt); }
    placeBySeq(item.el, d.seq);
    setReceipt(item.el, d.seq <= state.readByAgent ? 'read' : 'sent');
    regroup();
    noteSeq(d.seq);
  }

  function markFailed(item, reason) {
    if (!item.el) return;
    setReceipt(item.el, 'failed');
    var box = item.el.querySelector('.sb-receipt');
    if (box) {
      box.appendChild(icon('alert', 14));
      box.appendChild(h('span', { text: reason }));
    }
  }

  function onSubmit(event) {
    event.preventDefault();
    var text = els.input.value.replace(/\s+$/, '');
    var file = state.pendingFile;
    if (!text.trim() && !file) return;
    if (text.length > MAX_CONTENT) {
      showComposerError('Messages can be at most ' + MAX_CONTENT + ' characters.');
      return;
    }
    hideComposerError();
    if (!state.sessionId) return;
    stopTyping();
    if (file) {
      uploadAndSend(file, text);
    } else {
      queueMessage(text);
    }
    els.input.value = '';
    autosize();
    els.input.focus();
  }

  function onKeydown(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.composer.requestSubmit ? els.composer.requestSubmit() : onSubmit(event);
    }
  }

  function autosize() {
    els.input.style.height = 'auto';
    els.input.style.height = Math.min(els.input.scrollHeight, 120) + 'px';
  }

  var typingSentAt = 0;
  var typingTimer = null;
  function onInput() {
    autosize();
    if (!state.sessionId || state.status === 'closed' || !connected) return;
    if (!els.input.value.trim()) { stopTyping(); return; }
    var now = Date.now();
    if (now - typingSentAt > 4000) {
      typingSentAt = now;
      request('customer:typing', { sessionId: state.sessionId }).catch(function () {});
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3500);
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    if (!typingSentAt) return;
    typingSentAt = 0;
    if (connected && state.sessionId) request('customer:stop_typing', { sessionId: state.sessionId }).catch(function () {});
  }

  var typingHideTimer = null;
  function showTyping(name) {
    els.typingText.textContent = (name || 'Someone') + ' is typing…';
    els.typing.hidden = false;
    clearTimeout(typingHideTimer);
    typingHideTimer = setTimeout(hideTyping, 12000);
    scrollToEnd(false);
  }
  function hideTyping() {
    clearTimeout(typingHideTimer);
    if (els.typing) els.typing.hidden = true;
  }

  function showComposerError(text) {
    els.composerError.textContent = text;
    els.composerError.hidden = false;
  }
  function hideComposerError() { els.composerError.hidden = true; }

  // ---------------------------------------------------------------- attachments

  var uploadsUnavailable = false;
  function canAttach() { return !!state.sessionId && state.status !== 'closed' && !uploadsUnavailable; }
  function updateAttachAvailability() {
    if (!els.attachButton) return;
    els.attachButton.disabled = !canAttach();
    els.attachButton.title = uploadsUnavailable ? 'Attachments are not available right now' : 'Attach a file';
  }

  function onPaste(event) {
    var items = event.clipboardData && event.clipboardData.files;
    if (items && items.length && canAttach()) {
      event.preventDefault();
      pickFile(items[0]);
    }
  }

  function pickFile(file) {
    hideComposerError();
    if (!UPLOAD_TYPES.test(file.type || '')) {
      showComposerError('You can attach images (PNG, JPEG, GIF, WebP), PDF and plain-text files.');
      return;
    }
    if (file.size > MAX_UPLOAD) {
      showComposerError('That file is ' + formatSize(file.size) + '; the limit is 10 MB.');
      return;
    }
    clearPendingFile();
    state.pendingFile = file;
    var preview = els.preview;
    clear(preview);
    var thumb;
    if (/^image\//.test(file.type)) {
      state.previewUrl = URL.createObjectURL(file);
      thumb = h('img', { class: 'sb-preview-thumb', src: state.previewUrl, alt: '' });
    } else {
      thumb = h('span', { class: 'sb-preview-icon' }, icon('file', 20));
    }
    preview.appendChild(thumb);
    preview.appendChild(h('div', { class: 'sb-preview-info' },
      h('span', { class: 'sb-file-name', testid: 'sb-attachment-name', text: file.name }),
      h('span', { class: 'sb-file-size', text: formatSize(file.size) })));
    preview.appendChild(h('button', {
      type: 'button', class: 'sb-icon-button', 'aria-label': 'Remove attachment', title: 'Remove', testid: 'sb-attachment-remove',
      on: { click: clearPendingFile }
    }, icon('close', 16)));
    preview.hidden = false;
    els.input.focus();
  }

  function clearPendingFile() {
    state.pendingFile = null;
    if (state.previewUrl) { URL.revokeObjectURL(state.previewUrl); state.previewUrl = null; }
    clear(els.preview);
    els.preview.hidden = true;
  }

  function uploadAndSend(file, text) {
    var form = new FormData();
    form.append('sessionId', state.sessionId);
    form.append('file', file, file.name);
    els.send.disabled = true;
    els.preview.classList.add('sb-uploading');
    fetch(ORIGIN + '/api/uploads', { method: 'POST', headers: { Authorization: 'Bearer ' + state.token }, body: form })
      .then(function (response) {
        if (response.status === 201 || response.ok) return response.json();
        return response.json().catch(function () { return {}; }).then(function (body) {
          var error = new Error(body.message || ('HTTP ' + response.status));
          error.status = response.status;
          throw error;
        });
      })
      .then(function (uploaded) {
        clearPendingFile();
        queueMessage(text.trim() ? text : uploaded.fileName || file.name, [uploaded.attachmentId], [uploaded]);
      })
      .catch(function (error) {
        if (error.status === 404 || error.status === 405) {
          uploadsUnavailable = true;
          clearPendingFile();
          updateAttachAvailability();
          showComposerError('Attachments are not available right now.' + (text.trim() ? ' Your message was sent without it.' : ''));
          if (text.trim()) queueMessage(text);
        } else {
          els.input.value = text;
          showComposerError('The file could not be uploaded: ' + (error.message || 'network error') + '.');
        }
      })
      .then(function () {
        els.send.disabled = false;
        els.preview.classList.remove('sb-uploading');
      });
  }

  // ---------------------------------------------------------------- open / close, read state

  function isVisible() {
    return state.open && document.visibilityState === 'visible';
  }

  function markRead() {
    if (!isVisible() || !connected || !state.sessionId || state.maxSeq <= state.markedRead) return;
    var upTo = state.maxSeq;
    state.markedRead = upTo;
    request('customer:mark_read', { sessionId: state.sessionId, upToSeq: upTo }).catch(function () {
      if (state.markedRead === upTo) state.markedRead = 0;
    });
  }

  function renderBadge() {
    var count = state.open ? 0 : state.unread;
    els.badge.hidden = count === 0;
    els.badge.textContent = count > 9 ? '9+' : String(count);
    els.launcher.setAttribute('aria-label', (count ? count + ' unread. ' : '') + (state.open ? 'Close chat' : 'Open chat with ' + config.title));
  }

  function setOpen(open) {
    state.open = open;
    writeStore({ open: open || undefined });
    els.panel.hidden = !open;
    root.classList.toggle('sb-is-open', open);
    els.launcher.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) {
      state.unread = 0;
      if (state.sessionId || state.starting) {
        showConversation();
        connect();
      } else {
        showWelcome();
      }
      scrollToEnd(true);
      setTimeout(function () {
        if (!els.welcome.hidden) els.nameInput.focus();
        else if (!els.composer.hidden) els.input.focus();
      }, 50);
      markRead();
    }
    renderBadge();
  }

  function toggle() { setOpen(!state.open); }

  function disconnect() {
    wanted = false;
    clearTimeout(reconnectTimer);
    if (ws) { var socket = ws; ws = null; connected = false; socket.close(1000); }
  }

  // ---------------------------------------------------------------- host-minted tokens

  /** Uses a token from the host site; a different user than the stored one starts afresh. */
  function identify(token) {
    var claims = jwtClaims(token);
    if (!claims || !claims.sub) return false;
    config.token = token;
    var expiresAt = claims.exp ? new Date(claims.exp * 1000).toISOString() : null;
    if (state.userId && state.userId !== claims.sub) {
      if (root) forgetSession(); else writeStore({ sessionId: undefined, lastSeq: undefined, outbox: undefined, closed: undefined });
      state.sessionId = null;
    }
    state.token = token;
    state.userId = claims.sub;
    state.visitorName = claims.name || state.visitorName;
    state.expiresAt = expiresAt;
    writeStore({ token: token, userId: claims.sub, name: state.visitorName, expiresAt: expiresAt });
    if (ws) { reconnectIfTokenChanged(); connect(); }
    return true;
  }

  // ---------------------------------------------------------------- start

  function boot() {
    if (config.token) identify(config.token);
    build();
    if (config.token) {
      els.nameInput.hidden = true;
      var label = els.welcome.querySelector('.sb-label');
      if (label) label.hidden = true;
    }
    var saved = readStore();
    if (Array.isArray(saved.outbox)) {
      saved.outbox.forEach(function (item) {
        if (!item || !item.clientMsgId || typeof item.content !== 'string') return;
        var entry = { clientMsgId: item.clientMsgId, content: item.content, attachments: item.attachments || null, shown: item.shown || null, state: 'queued' };
        entry.el = messageElement({ sender: 'customer', content: item.content, attachments: item.shown }, true);
        entry.el.setAttribute('data-client-msg-id', item.clientMsgId);
        setReceipt(entry.el, 'sending');
        els.messages.appendChild(entry.el);
        outbox.push(entry);
      });
    }
    if (state.sessionId) {
      showConversation();
      // A finished chat needs no connection until the visitor opens the panel again.
      if (!saved.closed) ensureToken().catch(function () {}).then(connect);
    }
    if (saved.open || config.open) setOpen(true);
    renderBadge();

    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') { markRead(); reconnectNow(); }
    });
    window.addEventListener('online', reconnectNow);
    window.addEventListener('storage', function (event) {
      if (event.key !== STORE_KEY) return;
      var fresh = readStore();
      if (!state.sessionId && fresh.sessionId && fresh.token === state.token) {
        state.sessionId = fresh.sessionId;
        showConversation();
        if (connected) onConnected(); else connect();
      }
    });
  }

  window.Switchboard = {
    __loaded: true,
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    toggle: function () { toggle(); },
    identify: function (token) { return identify(token); }
  };

  if (document.body) boot();
  else document.addEventListener('DOMContentLoaded', boot);
})();
