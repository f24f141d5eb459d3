// The agent desk: sign-in, presence, the live queue, chats side by side as
// tabs, typing and read receipts, private notes, labels, transfer (to the
// queue, a named agent or a team), close, canned replies (also found by
// typing `/` at the start of a reply) and notifications. Speaks
// docs/PROTOCOL.md over /ws/agent.

import {
  Auth, Socket, api, attachmentList, avatar, beep, clear, formatDuration, formatSize, formatTime, h, icon, newId,
  richText, secondsSince, showLoginForm, toast, unlockAudio, wireLogin,
} from '/assets/common.js';

const auth = new Auth('switchboard:agent');
const MAX_CONTENT = 4000;
const MAX_UPLOAD = 10 * 1024 * 1024;
const UPLOAD_TYPES = /^(image\/(png|jpe?g|gif|webp)|application\/pdf|text\/plain)$/;
const TITLE = 'Agent desk · Switchboard';
const REPLY_PLACEHOLDER = 'Write a reply…  (Enter to send, Shift+Enter for a new line)';
const NOTE_PLACEHOLDER = 'Write a private note: only agents and admins see it, never the customer';

// What admins keep for everyone: canned replies (GET /api/canned-replies,
// sorted by shortcut) and labels (GET /api/labels). Each list is read at
// start and again whenever a menu that shows it opens, so something an admin
// added meanwhile is there without reloading the desk.
function remoteList(path, onChange) {
  const list = { items: [], loaded: false, error: null, pending: null };
  list.load = () => {
    if (list.pending) return list.pending;
    const token = auth.get()?.token;
    list.pending = api(path, { token }).then((result) => {
      list.pending = null;
      if (token !== auth.get()?.token) return list; // signed out meanwhile
      if (result.ok && Array.isArray(result.data)) {
        list.items = result.data;
        list.loaded = true;
        list.error = null;
      } else {
        list.error = result.error;
      }
      onChange();
      return list;
    });
    return list.pending;
  };
  list.reset = () => {
    list.items = [];
    list.loaded = false;
    list.error = null;
  };
  return list;
}

const cannedReplies = remoteList('/api/canned-replies', () => {
  for (const chat of state.chats.values()) if (chat.canned) renderCanned(chat);
});
const labelCatalog = remoteList('/api/labels', () => {
  const chat = state.chats.get(state.activeId);
  if (chat) renderDetails(chat);
});

const REASONS = {
  customer_asked: 'Asked for a person',
  customer_requested: 'Asked for a person',
  bot_could_not_help: 'The bot could not help',
  bot_unavailable: 'The bot was unavailable',
  agent_left: 'Agent left',
  no_reply: 'Waited too long for an answer',
  transferred: 'Transferred',
  offline: 'Left a message: answer by email',
};

const $ = (id) => document.getElementById(id);

const state = {
  login: null,
  me: null,
  status: 'online',
  queue: [],
  // The queue board by session id: the whole board arrives once (queue:update),
  // then only what changed (queue:changed).
  board: null,
  boardRender: 0,
  seenQueue: new Set(),
  queueLoaded: false,
  newWhileHidden: 0,
  chats: new Map(),
  order: [],
  activeId: null,
  sound: localStorage.getItem('switchboard:agent:sound') !== 'off',
  uploadsUnavailable: false,
  // What GET /api/customers/{id} said of each customer whose chat is open
  // here: {data, status, error, loading, at}. Kept when a later load is
  // refused (after the chat closed, the agent may no longer read it).
  customers: new Map(),
};

let socket = null;

// ------------------------------------------------------------------ sign-in

function showLogin(notice) {
  showLoginForm(notice);
  document.title = TITLE;
}

function signOut(notice) {
  if (socket) socket.close();
  socket = null;
  auth.clear();
  for (const chat of state.chats.values()) chat.els.pane.remove();
  state.chats.clear();
  state.order = [];
  state.activeId = null;
  state.queue = [];
  state.board = null;
  state.seenQueue.clear();
  state.queueLoaded = false;
  state.customers.clear();
  cannedReplies.reset();
  labelCatalog.reset();
  if ($('transcript-dialog').open) $('transcript-dialog').close();
  if ($('transfer-dialog').open) $('transfer-dialog').close();
  clear($('queue'));
  clear($('chats'));
  showLogin(notice);
}

wireLogin({
  form: $('login-form'),
  accept: (login) => (login.role === 'agent' ? null
    : login.role === 'partner' ? 'This is a partner account. Partners use the partner page at /partner.'
      : 'This is an admin account. Admins use the admin console at /admin.'),
  onSignedIn: (login) => {
    unlockAudio();
    auth.set(login);
    startApp(login);
  },
});

// ------------------------------------------------------------------ the app shell

function startApp(login) {
  state.login = login;
  $('login').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = login.name;
  const meBox = $('me');
  meBox.querySelector('.avatar')?.remove();
  meBox.prepend(avatar(login.name));
  renderSound();
  cannedReplies.load();
  labelCatalog.load();
  socket = new Socket(
    () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/agent?token=${encodeURIComponent(auth.get()?.token || '')}`,
    { onFrame, onOpen: join, onState: connectionState },
  );
  socket.connect();
}

function renderSound() {
  const button = $('sound-toggle');
  clear(button).append(icon(state.sound ? 'bell' : 'bellOff', 18));
  button.setAttribute('aria-pressed', String(state.sound));
  button.title = state.sound ? 'Sound on' : 'Sound off';
}

$('sound-toggle').addEventListener('click', () => {
  state.sound = !state.sound;
  localStorage.setItem('switchboard:agent:sound', state.sound ? 'on' : 'off');
  unlockAudio();
  renderSound();
  if (state.sound) beep();
});
$('sign-out').append(icon('logout', 18));
$('sign-out').addEventListener('click', () => signOut('You have signed out.'));
document.addEventListener('pointerdown', unlockAudio, { once: true });
document.addEventListener('keydown', unlockAudio, { once: true });

function connectionState(kind, info = {}) {
  const box = $('connection');
  box.dataset.state = kind;
  const label = box.querySelector('.label');
  if (kind === 'open') label.textContent = 'Connected';
  else if (kind === 'connecting') label.textContent = 'Connecting…';
  else label.textContent = 'Reconnecting…';
  $('status-toggle').disabled = kind !== 'open';
  if (kind === 'closed') {
    if (!auth.get()) {
      signOut('Your session has expired. Please sign in again.');
      return;
    }
    if (info.failedOpens > 0) {
      // Refused before opening. While the server is down that is expected; a
      // healthy server refusing twice in a row no longer accepts this sign-in
      // (account disabled, token revoked, secret changed).
      api('/health').then((health) => {
        state.refusals = health.status === 200 ? (state.refusals || 0) + 1 : 0;
        if (state.refusals >= 2 && socket && !socket.open) {
          state.refusals = 0;
          signOut('The server no longer accepts this sign-in. Please sign in again.');
        }
      });
    }
  } else if (kind === 'open') {
    state.refusals = 0;
  }
}

async function join() {
  try {
    await socket.request('agent:join', {});
  } catch (error) {
    if (error.code === 'forbidden' || error.code === 'unauthorized') signOut(error.message);
    else toast(`Could not join: ${error.message || error.code}`, 'error');
    return;
  }
  const wanted = sessionStorage.getItem('switchboard:agent:status');
  if (wanted && wanted !== state.status) setStatus(wanted);
}

// ------------------------------------------------------------------ presence

function renderStatus(status) {
  state.status = status;
  const toggle = $('status-toggle');
  toggle.dataset.status = status;
  toggle.setAttribute('aria-checked', String(status === 'online'));
  toggle.querySelector('.status-label').textContent = status === 'online' ? 'Online' : status === 'away' ? 'Away' : 'Offline';
  toggle.title = status === 'online' ? 'You get new chats automatically. Click to go away.' : 'You get no new chats automatically. Click to go online.';
}

async function setStatus(status) {
  sessionStorage.setItem('switchboard:agent:status', status);
  try {
    const reply = await socket.request('agent:set_status', { status });
    renderStatus(reply.data.status);
  } catch (error) {
    toast(`Status not changed: ${error.message || error.code}`, 'error');
  }
}

$('status-toggle').addEventListener('click', () => setStatus(state.status === 'online' ? 'away' : 'online'));

function renderCapacity() {
  const open = [...state.chats.values()].filter((chat) => !chat.closed).length;
  const max = state.me?.maxConcurrent ?? '–';
  $('capacity').textContent = `${open} / ${max} chats`;
  $('capacity').dataset.full = String(state.me && open >= state.me.maxConcurrent);
}

// ------------------------------------------------------------------ frames

function onFrame({ event, data = {} }) {
  switch (event) {
    case 'agent:joined':
      state.me = data.agent;
      // These come back as session:assigned right after joining: restored, not new.
      state.restoring = new Set(data.agent.activeSessions || []);
      renderStatus(data.agent.status);
      renderCapacity();
      break;
    case 'agent:status': renderStatus(data.status); break;
    case 'queue:update':
      state.board = new Map((data.sessions || []).map((item) => [item.sessionId, item]));
      renderBoardSoon();
      break;
    case 'queue:changed':
      // A change before this socket's first whole board is already in that board.
      if (!state.board) break;
      for (const id of data.removed || []) state.board.delete(id);
      for (const item of data.upserted || []) state.board.set(item.sessionId, item);
      renderBoardSoon();
      break;
    case 'session:assigned': assigned(data); break;
    case 'session:released': released(data.sessionId, data.reason); break;
    case 'session:closed': closed(data.sessionId, data.reason); break;
    case 'message:received': {
      const chat = state.chats.get(data.sessionId);
      if (chat) addMessage(chat, data, true);
      break;
    }
    case 'message:sent': acknowledge(data); break;
    case 'messages:cleared': {
      const chat = state.chats.get(data.sessionId);
      if (chat) {
        for (const li of chat.seqs.values()) li.remove();
        chat.seqs.clear();
        chat.ids.clear();
        regroup(chat);
      }
      break;
    }
    case 'agent:updated':
      state.me = { ...state.me, ...data.agent };
      renderCapacity();
      toast(`An admin set your capacity to ${data.agent.maxConcurrent} chats.`);
      break;
    case 'session:updated': {
      const chat = data.session && state.chats.get(data.session.sessionId);
      if (chat) {
        chat.session = { ...chat.session, ...data.session };
        renderChatHeader(chat);
        if (state.activeId === chat.id) renderDetails(chat);
      }
      break;
    }
    case 'status:changed': {
      const chat = state.chats.get(data.sessionId);
      if (chat) {
        chat.session.status = data.status;
        renderChatHeader(chat);
      }
      break;
    }
    case 'user_typing':
    case 'typing_stopped': {
      const chat = state.chats.get(data.sessionId);
      if (chat && (data.role === 'customer' || data.role === 'partner')) setTyping(chat, event === 'user_typing', data.name);
      break;
    }
    case 'partner:joined':
    case 'partner:left': {
      const chat = state.chats.get(data.sessionId);
      if (chat) partnersChanged(chat, event, data);
      break;
    }
    case 'messages_read': {
      const chat = state.chats.get(data.sessionId);
      if (chat && data.role === 'customer' && data.upToSeq > chat.customerRead) {
        chat.customerRead = data.upToSeq;
        refreshReceipts(chat);
      }
      break;
    }
    case 'error':
      toast(data.message || data.code || 'Something went wrong.', 'error');
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ queue

function reasonText(reason) {
  if (!reason) return null;
  return REASONS[reason] || reason;
}

const PRIORITY_RANK = { high: 0, normal: 1, low: 2 };

// Many changes in a row draw the board once. (A timer, not an animation
// frame: a hidden tab must still notice a new customer.)
function renderBoardSoon() {
  if (state.boardRender) return;
  state.boardRender = setTimeout(() => {
    state.boardRender = 0;
    if (!state.board) return;
    const items = [...state.board.values()].sort((a, b) =>
      (PRIORITY_RANK[a.priority] ?? 1) - (PRIORITY_RANK[b.priority] ?? 1)
      || Date.parse(a.waitingSince) - Date.parse(b.waitingSince));
    items.forEach((item, index) => { item.position = index + 1; });
    renderQueue(items);
  }, 0);
}

function renderQueue(items) {
  const fresh = items.filter((item) => !state.seenQueue.has(item.sessionId));
  if (state.queueLoaded && fresh.length) {
    notify(`${fresh[0].customerName || 'A customer'} is waiting in the queue`, true);
  }
  for (const item of items) state.seenQueue.add(item.sessionId);
  state.queueLoaded = true;
  state.queue = items;

  const list = clear($('queue'));
  for (const item of items) {
    const pickupButton = h('button', {
      class: 'btn btn-primary btn-sm', type: 'button', testid: 'agent-pickup',
      onclick: () => pickup(item.sessionId, pickupButton),
    }, 'Pick up');
    const reason = reasonText(item.reason);
    const offline = item.status === 'offline';
    list.append(h('li', { class: `queue-item prio-${item.priority}${offline ? ' queue-offline' : ''}`, testid: 'agent-queue-item', dataset: { sessionId: item.sessionId, status: item.status || 'waiting' } },
      h('div', { class: 'queue-row' },
        avatar(item.customerName),
        h('div', { class: 'queue-who' },
          h('span', { class: 'queue-name', testid: 'agent-queue-name', text: item.customerName || 'Visitor' }),
          h('span', { class: 'queue-wait' }, icon('clock', 13), h('span', { dataset: { since: item.waitingSince }, text: formatDuration(secondsSince(item.waitingSince)) }))),
        offline ? h('span', { class: 'prio prio-offline', testid: 'agent-queue-offline', title: 'The customer left a message and an email address', text: 'offline' }) : null,
        h('span', { class: `prio prio-${item.priority}`, testid: 'agent-queue-priority', text: item.priority })),
      item.preview ? h('p', { class: 'queue-preview', testid: 'agent-queue-preview', text: item.preview }) : h('p', { class: 'queue-preview muted', text: 'No message yet' }),
      h('div', { class: 'queue-row queue-foot' },
        h('span', { class: 'queue-reason', testid: 'agent-queue-reason', title: reason || '', dataset: { reason: item.reason || '' }, text: reason ? `#${item.position} · ${reason}` : `#${item.position} in line` }),
        pickupButton)));
  }
  $('queue-count').textContent = String(items.length);
  $('queue-empty').hidden = items.length > 0;
  updateTitle();
}

async function pickup(sessionId, button) {
  button.disabled = true;
  button.textContent = 'Picking up…';
  state.pickingUp = sessionId;
  try {
    await socket.request('agent:pickup_session', { sessionId });
    activate(sessionId);
  } catch (error) {
    state.pickingUp = null;
    const text = {
      already_assigned: 'Another agent has already picked this chat up.',
      not_waiting: 'This chat is no longer waiting.',
      session_closed: 'The customer has left.',
    }[error.code] || `Could not pick up: ${error.message || error.code}`;
    toast(text, 'error');
    button.disabled = false;
    button.textContent = 'Pick up';
  }
}

setInterval(() => {
  for (const node of document.querySelectorAll('[data-since]')) {
    node.textContent = formatDuration(secondsSince(node.dataset.since));
  }
}, 1000);

// ------------------------------------------------------------------ chats

function assigned({ sessionId, session, messages = [] }) {
  const restored = Boolean(state.restoring?.delete(sessionId));
  let chat = state.chats.get(sessionId);
  const isNew = !chat || chat.closed || chat.released;
  if (chat && (chat.closed || chat.released)) {
    removeChat(chat);
    chat = null;
  }
  if (!chat) {
    chat = createChat(sessionId, session);
    state.chats.set(sessionId, chat);
    state.order.unshift(sessionId);
    $('chats').prepend(chat.els.tab);
    $('chat-area').append(chat.els.pane);
  }
  chat.session = session;
  for (const message of messages) addMessage(chat, message, false);
  renderChatHeader(chat);
  flushOutbox(chat);
  renderCapacity();
  renderChatCount();
  if (isNew && state.pickingUp !== sessionId) {
    if (!restored) notify(`New chat with ${session.customerName || 'a customer'}`, true);
    if (!state.activeId) activate(sessionId);
  }
  if (state.pickingUp === sessionId) state.pickingUp = null;
  if (state.activeId === sessionId) renderDetails(chat);
  loadCustomer(chat, { force: true });
  loadChatLabels(chat);
}

function createChat(sessionId, session) {
  const chat = {
    id: sessionId,
    session,
    seqs: new Map(),
    ids: new Set(),
    maxSeq: 0,
    unread: 0,
    customerRead: 0,
    markedRead: 0,
    outbox: [],
    closed: false,
    released: false,
    typingSentAt: 0,
    typingTimer: null,
    typingHide: null,
    pendingFile: null,
    // The open canned-reply menu: {query, slash, active, matches}, or null.
    canned: null,
    // The chat's labels by name (null until read), and the label picker.
    labels: null,
    labelsError: null,
    labelsSaving: false,
    labelPicker: false,
    // 'reply' goes to the customer; 'note' stays with the staff. The mode
    // stays as chosen after sending: falling back to 'reply' by itself would
    // send the next thing the agent meant as a note to the customer.
    mode: 'reply',
    els: {},
  };
  const els = chat.els;

  // the tab in "My chats"
  els.tabName = h('span', { class: 'tab-name', text: session.customerName || 'Visitor' });
  els.tabPreview = h('span', { class: 'tab-preview', testid: 'agent-chat-preview' });
  els.tabTime = h('span', { class: 'tab-time' });
  els.badge = h('span', { class: 'unread', testid: 'agent-unread', hidden: true });
  els.tab = h('li', { class: 'chat-tab', testid: 'agent-chat-tab', dataset: { sessionId }, role: 'button', tabindex: '0', onclick: () => activate(sessionId), onkeydown: (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); activate(sessionId); } } },
    avatar(session.customerName),
    h('div', { class: 'tab-main' }, h('div', { class: 'tab-row' }, els.tabName, els.tabTime), h('div', { class: 'tab-row' }, els.tabPreview, els.badge)));

  // the pane
  els.title = h('h2', { class: 'chat-title', testid: 'agent-chat-title', text: session.customerName || 'Visitor' });
  els.subtitle = h('p', { class: 'chat-sub', testid: 'agent-chat-status' });
  els.transfer = h('button', { class: 'btn btn-sm', type: 'button', testid: 'agent-transfer', title: 'Transfer: to the queue, an agent or a team', 'aria-label': 'Transfer this chat', onclick: () => openTransfer(chat) }, icon('swap', 16), h('span', { class: 'label', text: 'Transfer' }));
  els.partnerCount = h('span', { class: 'count', testid: 'agent-partner-count', hidden: true });
  els.partners = h('button', { class: 'btn btn-sm', type: 'button', testid: 'agent-partners', title: 'Invite or remove a partner (a restaurant, a merchant, a courier)', 'aria-label': 'Partners in this chat', onclick: () => openPartners(chat) }, icon('people', 16), h('span', { class: 'label', text: 'Invite partner' }), els.partnerCount);
  els.close = h('button', { class: 'btn btn-sm btn-danger-soft', type: 'button', testid: 'agent-close', title: 'Close chat', 'aria-label': 'Close chat', onclick: () => openClose(chat) }, icon('done', 16), h('span', { class: 'label', text: 'Close chat' }));
  els.emailTranscript = h('button', { class: 'btn btn-sm', type: 'button', testid: 'agent-send-transcript', title: 'Email the transcript', 'aria-label': 'Email the transcript', onclick: () => openEmailTranscript(chat) }, icon('mail', 16), h('span', { class: 'label', text: 'Transcript' }));
  els.back = h('button', { class: 'icon-btn back-btn', type: 'button', testid: 'agent-back', 'aria-label': 'Back to the list', onclick: () => { $('workspace').dataset.view = 'list'; } }, icon('back', 20));
  // Narrow screens have no room for the details column: it slides over the chat.
  els.customerToggle = h('button', { class: 'btn btn-sm details-toggle', type: 'button', testid: 'agent-customer-toggle', title: 'Customer', 'aria-label': 'Customer details', onclick: () => showDetailsOver(true) }, icon('person', 16), h('span', { class: 'label', text: 'Customer' }));
  els.head = h('header', { class: 'chat-head' },
    els.back, avatar(session.customerName, 'avatar-lg'),
    h('div', { class: 'chat-heading' }, els.title, els.subtitle),
    h('div', { class: 'chat-actions' }, els.customerToggle, els.partners, els.emailTranscript, els.transfer, els.close));

  els.endedText = h('span');
  els.ended = h('div', { class: 'chat-ended', testid: 'agent-chat-ended', hidden: true },
    icon('done', 18), els.endedText,
    h('button', { class: 'btn btn-sm', type: 'button', testid: 'agent-dismiss', onclick: () => dismiss(chat) }, 'Dismiss'));

  els.list = h('ol', { class: 'messages', testid: 'agent-messages', 'aria-live': 'polite', 'aria-label': 'Conversation' });
  els.typingText = h('span');
  els.typing = h('div', { class: 'typing', testid: 'agent-typing', hidden: true }, h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), els.typingText);
  els.scroll = h('div', { class: 'chat-scroll' }, els.list, els.typing);

  // composer
  els.input = h('textarea', {
    class: 'composer-input', testid: 'agent-input', rows: '2', maxlength: String(MAX_CONTENT),
    placeholder: REPLY_PLACEHOLDER, 'aria-label': `Reply to ${session.customerName || 'the customer'}`,
    'aria-autocomplete': 'list', 'aria-controls': `canned-${sessionId}`, 'aria-expanded': 'false',
    oninput: () => {
      cannedFromInput(chat);
      onInput(chat);
    },
    onkeydown: (event) => {
      if (chat.canned && cannedKey(chat, event)) return;
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send(chat);
      }
    },
  });
  els.canned = h('div', { class: 'canned-menu', id: `canned-${sessionId}`, testid: 'agent-canned-menu', role: 'listbox', 'aria-label': 'Canned replies', hidden: true });
  els.cannedButton = h('button', {
    type: 'button', class: 'btn btn-sm btn-ghost', testid: 'agent-canned', 'aria-haspopup': 'listbox', 'aria-expanded': 'false',
    onclick: () => {
      if (chat.canned) closeCanned(chat);
      else {
        openCanned(chat, '', false);
        els.input.focus();
      }
    },
    title: 'Canned replies (or type / at the start of a reply)', 'aria-label': 'Canned replies',
  }, icon('zap', 16), h('span', { text: 'Canned replies' }));
  els.file = h('input', {
    type: 'file', hidden: true, testid: 'agent-file', accept: 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,.csv,.docx,.xlsx,.odt,.ods',
    onchange: () => { if (els.file.files[0]) pickFile(chat, els.file.files[0]); els.file.value = ''; },
  });
  els.attach = h('button', { type: 'button', class: 'btn btn-sm btn-ghost', testid: 'agent-attach', title: 'Attach a file', 'aria-label': 'Attach a file', onclick: () => els.file.click() }, icon('clip', 16), h('span', { text: 'Attach' }));
  els.preview = h('div', { class: 'attachment-preview', hidden: true });
  els.sendLabel = h('span', { text: 'Send' });
  els.send = h('button', { type: 'button', class: 'btn btn-primary send-btn', testid: 'agent-send', onclick: () => send(chat), 'aria-label': 'Send' }, els.sendLabel, icon('send', 16));
  els.modeReply = h('button', {
    type: 'button', class: 'mode-btn', testid: 'agent-mode-reply', 'aria-pressed': 'true',
    title: 'Reply to the customer', onclick: () => setMode(chat, 'reply'),
  }, icon('chat', 14), h('span', { text: 'Reply' }));
  els.modeNote = h('button', {
    type: 'button', class: 'mode-btn', testid: 'agent-mode-note', 'aria-pressed': 'false',
    title: 'Write a note only your team sees', onclick: () => setMode(chat, 'note'),
  }, icon('lock', 14), h('span', { text: 'Private note' }));
  els.modeHint = h('span', { class: 'mode-hint', testid: 'agent-note-hint', hidden: true }, 'Not sent to the customer');
  els.composer = h('div', { class: 'composer', testid: 'agent-composer', dataset: { mode: 'reply' } },
    els.canned,
    h('div', { class: 'composer-modes', role: 'group', 'aria-label': 'Reply or private note' }, els.modeReply, els.modeNote, els.modeHint),
    els.preview, els.input,
    h('div', { class: 'composer-bar' }, els.cannedButton, els.attach, els.file, h('span', { class: 'spacer' }), els.send));

  els.pane = h('section', { class: 'chat-pane', testid: 'agent-chat', dataset: { sessionId }, hidden: true, 'aria-label': `Chat with ${session.customerName || 'customer'}` },
    els.head, els.ended, els.scroll, els.composer);
  return chat;
}

function fillCanned(chat, text) {
  const first = String(chat.session.customerName || 'there').split(/\s+/)[0];
  const agentFirst = String(state.login?.name || 'your agent').split(/\s+/)[0];
  return text.replaceAll('{name}', first).replaceAll('{agent}', agentFirst);
}

function insertCanned(chat, text) {
  const input = chat.els.input;
  const value = fillCanned(chat, text);
  input.value = input.value.trim() ? `${input.value.replace(/\s+$/, '')} ${value}` : value;
  closeCanned(chat);
  input.focus();
  onInput(chat);
}

// ------------------------------------------------------------------ canned replies

/**
 * The canned replies a query finds: shortcuts that start with it, then
 * shortcuts that contain it, then titles that contain it, each group in the
 * server's order (by shortcut).
 */
function matchCanned(query) {
  const wanted = query.toLowerCase();
  if (!wanted) return cannedReplies.items;
  const rank = (item) => {
    const shortcut = String(item.shortcut || '').toLowerCase();
    if (shortcut.startsWith(wanted)) return 0;
    if (shortcut.includes(wanted)) return 1;
    if (String(item.title || '').toLowerCase().includes(wanted)) return 2;
    return -1;
  };
  return cannedReplies.items
    .map((item) => ({ item, rank: rank(item) }))
    .filter((found) => found.rank >= 0)
    .sort((a, b) => a.rank - b.rank)
    .map((found) => found.item);
}

/**
 * Opens (or updates) the chat's canned-reply menu. `slash`: opened by typing
 * `/query` at the start of the reply, which the chosen reply replaces, and
 * the first match is ready for Enter; else opened by the button, and a reply
 * is added to what is written. Opening reads the list again.
 */
function openCanned(chat, query, slash) {
  const wasOpen = Boolean(chat.canned);
  if (wasOpen && chat.canned.query === query && chat.canned.slash === slash) return;
  chat.canned = { query, slash, active: slash ? 0 : -1, matches: [] };
  chat.els.canned.hidden = false;
  chat.els.input.setAttribute('aria-expanded', 'true');
  chat.els.cannedButton.setAttribute('aria-expanded', 'true');
  renderCanned(chat);
  if (!wasOpen) cannedReplies.load();
}

function closeCanned(chat) {
  if (!chat.canned) return;
  chat.canned = null;
  chat.els.canned.hidden = true;
  clear(chat.els.canned);
  chat.els.input.setAttribute('aria-expanded', 'false');
  chat.els.input.removeAttribute('aria-activedescendant');
  chat.els.cannedButton.setAttribute('aria-expanded', 'false');
}

/** `/` at the very start of a reply, and no space yet, searches the canned replies. */
function cannedFromInput(chat) {
  const typed = chat.mode === 'reply' ? /^\/(\S{0,60})$/.exec(chat.els.input.value) : null;
  if (typed) openCanned(chat, typed[1], true);
  else if (chat.canned?.slash) closeCanned(chat);
}

function renderCanned(chat) {
  const menu = clear(chat.els.canned);
  const { query, slash } = chat.canned;
  // The reply chosen stays chosen when the list is read again.
  const chosen = chat.canned.matches[chat.canned.active]?.id;
  const matches = matchCanned(query);
  chat.canned.matches = matches;
  const kept = chosen ? matches.findIndex((item) => item.id === chosen) : -1;
  if (kept >= 0) chat.canned.active = kept;
  else if (chat.canned.active >= matches.length) chat.canned.active = matches.length ? 0 : -1;
  if (slash && matches.length && chat.canned.active < 0) chat.canned.active = 0;
  menu.append(h('div', { class: 'canned-head', 'aria-hidden': 'true' },
    h('span', {}, 'Canned replies', slash ? h('span', { class: 'canned-query', text: ` for /${query}` }) : null),
    h('span', { class: 'canned-keys', text: slash ? '↑↓ choose · Enter insert · Esc close' : 'Tip: type / in a reply to search' })));
  matches.forEach((item, index) => {
    menu.append(h('button', {
      type: 'button', class: 'canned-item', role: 'option', id: `canned-${chat.id}-${index}`, tabindex: '-1',
      testid: 'agent-canned-item', dataset: { shortcut: item.shortcut, index: String(index) }, 'aria-selected': 'false',
      // The reply stays focused: a click picks without taking the caret away.
      onmousedown: (event) => event.preventDefault(),
      onclick: () => pickCanned(chat, item),
    },
    h('span', { class: 'canned-line' },
      h('strong', { class: 'canned-title', text: item.title }),
      h('code', { class: 'canned-shortcut', testid: 'agent-canned-shortcut', text: `/${item.shortcut}` })),
    h('span', { class: 'canned-text', text: fillCanned(chat, item.content || '') })));
  });
  if (!matches.length) {
    let text;
    if (cannedReplies.error && !cannedReplies.loaded) text = `The canned replies could not be loaded: ${cannedReplies.error.message || cannedReplies.error.error}`;
    else if (!cannedReplies.loaded) text = 'Loading the canned replies…';
    else if (query) text = `No canned reply matches “/${query}”. Esc closes this list.`;
    else text = 'No canned replies yet: admins add them on the admin page.';
    menu.append(h('p', { class: 'canned-empty', testid: 'agent-canned-empty', text }));
  }
  highlightCanned(chat);
}

function highlightCanned(chat) {
  const { active } = chat.canned;
  for (const item of chat.els.canned.querySelectorAll('.canned-item')) {
    const on = Number(item.dataset.index) === active;
    item.classList.toggle('is-active', on);
    item.setAttribute('aria-selected', String(on));
    if (on) item.scrollIntoView({ block: 'nearest' });
  }
  if (active >= 0) chat.els.input.setAttribute('aria-activedescendant', `canned-${chat.id}-${active}`);
  else chat.els.input.removeAttribute('aria-activedescendant');
}

/** Keys in the reply while the menu is open; true when the key was the menu's. */
function cannedKey(chat, event) {
  const { matches, active } = chat.canned;
  if (event.isComposing) return false;
  if (event.key === 'Escape') {
    event.preventDefault();
    closeCanned(chat);
    return true;
  }
  if ((event.key === 'ArrowDown' || event.key === 'ArrowUp') && matches.length) {
    event.preventDefault();
    const step = event.key === 'ArrowDown' ? 1 : -1;
    chat.canned.active = active < 0 ? (step > 0 ? 0 : matches.length - 1) : (active + step + matches.length) % matches.length;
    highlightCanned(chat);
    return true;
  }
  if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey && active >= 0 && matches[active]) {
    event.preventDefault();
    pickCanned(chat, matches[active]);
    return true;
  }
  return false;
}

function pickCanned(chat, item) {
  if (!chat.canned?.slash) {
    insertCanned(chat, item.content || '');
    return;
  }
  // The "/query" that found it is replaced by the reply.
  const input = chat.els.input;
  input.value = fillCanned(chat, item.content || '');
  closeCanned(chat);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  onInput(chat);
}

// A click anywhere but the composer closes its menu.
document.addEventListener('pointerdown', (event) => {
  for (const chat of state.chats.values()) {
    if (chat.canned && !chat.els.composer.contains(event.target)) closeCanned(chat);
  }
});

function setMode(chat, mode) {
  if (chat.mode === mode) {
    chat.els.input.focus();
    return;
  }
  // Typing a note is nothing the customer should see as "Alice is typing…".
  if (mode === 'note') stopTyping(chat);
  chat.mode = mode;
  renderMode(chat);
  chat.els.input.focus();
  if (mode === 'reply') onInput(chat);
}

function renderMode(chat) {
  const els = chat.els;
  const note = chat.mode === 'note';
  els.composer.dataset.mode = chat.mode;
  els.modeReply.setAttribute('aria-pressed', String(!note));
  els.modeNote.setAttribute('aria-pressed', String(note));
  els.modeHint.hidden = !note;
  els.input.placeholder = note ? NOTE_PLACEHOLDER : REPLY_PLACEHOLDER;
  els.input.setAttribute('aria-label', note ? 'Private note, not sent to the customer' : `Reply to ${chat.session.customerName || 'the customer'}`);
  els.sendLabel.textContent = note ? 'Add note' : 'Send';
  els.send.setAttribute('aria-label', note ? 'Add private note' : 'Send');
  // Notes carry text only: canned replies and files belong to replies (a
  // file already chosen waits for reply mode).
  els.cannedButton.hidden = note;
  els.attach.hidden = note;
  if (note) closeCanned(chat);
  els.preview.hidden = note || !chat.pendingFile;
}

function renderChatHeader(chat) {
  const s = chat.session;
  const parts = [];
  if (chat.closed) parts.push('Closed');
  else if (chat.released) parts.push('No longer yours');
  else parts.push(`Started ${formatTime(s.createdAt)}`);
  parts.push(`${s.priority || 'normal'} priority`);
  if (s.title) parts.push(s.title);
  if (s.category) parts.push(s.category);
  if (s.botContext) parts.push(s.botContext);
  chat.els.subtitle.textContent = parts.join(' · ');
  const live = !chat.closed && !chat.released;
  chat.els.transfer.disabled = !live;
  chat.els.partners.disabled = chat.released;
  const partners = s.partners || [];
  chat.els.partnerCount.hidden = partners.length === 0;
  chat.els.partnerCount.textContent = String(partners.length);
  chat.els.close.disabled = !live;
  chat.els.input.disabled = !live;
  chat.els.send.disabled = !live;
  chat.els.attach.disabled = !live || state.uploadsUnavailable;
  chat.els.cannedButton.disabled = !live;
  chat.els.modeReply.disabled = !live;
  chat.els.modeNote.disabled = !live;
  chat.els.composer.hidden = !live;
  chat.els.tab.classList.toggle('is-closed', !live);
}

function renderChatCount() {
  const count = state.chats.size;
  $('chats-count').textContent = String(count);
  $('chats-empty').hidden = count > 0;
}

function activate(sessionId) {
  const chat = state.chats.get(sessionId);
  if (!chat) return;
  state.activeId = sessionId;
  for (const other of state.chats.values()) {
    other.els.pane.hidden = other !== chat;
    other.els.tab.classList.toggle('is-active', other === chat);
    other.els.tab.setAttribute('aria-current', other === chat ? 'true' : 'false');
  }
  $('chat-empty').hidden = true;
  $('workspace').dataset.view = 'chat';
  chat.unread = 0;
  renderUnread(chat);
  renderDetails(chat);
  loadCustomer(chat);
  scrollToEnd(chat, true);
  markRead(chat);
  if (!chat.els.input.disabled && window.matchMedia('(min-width: 761px)').matches) chat.els.input.focus();
}

function removeChat(chat) {
  chat.els.tab.remove();
  chat.els.pane.remove();
  state.chats.delete(chat.id);
  state.order = state.order.filter((id) => id !== chat.id);
  if (state.activeId === chat.id) {
    state.activeId = null;
    const next = state.order.find((id) => state.chats.has(id));
    if (next) activate(next);
    else {
      $('chat-empty').hidden = false;
      $('workspace').dataset.view = 'list';
      renderDetails(null);
    }
  }
  renderCapacity();
  renderChatCount();
  updateTitle();
}

function dismiss(chat) {
  removeChat(chat);
}

function released(sessionId, reason) {
  const chat = state.chats.get(sessionId);
  if (!chat || chat.closed) return;
  if (reason === 'closed') return; // session:closed tells the rest
  chat.released = true;
  if (reason === 'transferred') {
    removeChat(chat);
    return;
  }
  renderChatHeader(chat);
  chat.els.endedText.textContent = reason === 'no_reply'
    ? 'The customer waited too long for your answer, so this chat went back to the queue.'
    : 'This chat went back to the queue while you were away.';
  chat.els.ended.hidden = false;
  renderCapacity();
}

function closed(sessionId, reason) {
  const chat = state.chats.get(sessionId);
  if (!chat || chat.closed) return;
  chat.closed = true;
  setTyping(chat, false);
  chat.els.endedText.textContent = {
    resolved: 'You closed this chat as resolved.',
    closed_by_agent: 'You closed this chat.',
    customer_ended: 'The customer ended the chat.',
    abandoned: 'The customer left, so the chat was closed.',
  }[reason] || 'This chat has ended.';
  chat.els.ended.hidden = false;
  for (const item of chat.outbox) markFailed(item, 'the chat has ended');
  chat.outbox = [];
  // The customer's chat list was read while this chat was open; it ends the same way here.
  const past = state.customers.get(chat.session.customerId)?.data?.sessions?.find((item) => item.sessionId === sessionId);
  if (past) Object.assign(past, { status: 'closed', endedReason: reason, isResolved: reason === 'resolved', closedAt: new Date().toISOString() });
  renderChatHeader(chat);
  renderCapacity();
  if (state.activeId === sessionId) renderDetails(chat);
}

// ------------------------------------------------------------------ messages

function senderName(message) {
  if (message.sender === 'customer') return message.senderName || 'Customer';
  if (message.sender === 'bot') return message.senderName || 'Assistant';
  if (message.sender === 'agent' || message.sender === 'note') return message.senderName || 'Agent';
  if (message.sender === 'partner') return message.senderName || 'Partner';
  return '';
}

/**
 * Whether an agent's message is this agent's own. Messages name their sender
 * but carry no sender id, so a chat transferred from a colleague tells their
 * replies apart by name.
 */
function byMe(message) {
  return !message.senderName || !state.login?.name || message.senderName === state.login.name;
}

/**
 * One message of a conversation as a list item. A private note (sender
 * `note`) is drawn apart from everything the customer sees: amber, dashed,
 * with a lock and "Private note" before its author's name.
 */
function messageElement(message, { receipt = true } = {}) {
  const system = message.sender === 'system' || message.messageType === 'system';
  const sender = system ? 'system' : message.sender;
  const mine = sender === 'agent' && byMe(message);
  const note = sender === 'note';
  const li = h('li', { class: `msg from-${sender}${mine ? ' mine' : ''}`, testid: 'agent-message', dataset: { sender } });
  if (system) {
    li.append(h('span', { class: 'system-text', testid: 'agent-message-text', text: message.content || '' }),
      h('time', { class: 'system-time', datetime: message.createdAt || '', text: formatTime(message.createdAt) }));
    return li;
  }
  const bubble = h('div', { class: 'bubble', testid: 'agent-message-text' });
  bubble.append(richText(message.content || ''));
  const tag = sender === 'bot' ? h('span', { class: 'tag tag-bot', text: 'Bot' })
    : sender === 'partner' ? h('span', { class: 'tag tag-partner', testid: 'agent-partner-label', text: 'Partner' }) : null;
  const noteTag = note ? h('span', { class: 'tag tag-note', testid: 'agent-note-label' }, icon('lock', 11), 'Private note') : null;
  const meta = h('div', { class: 'msg-meta' },
    noteTag, h('span', { class: 'msg-name', testid: note ? 'agent-note-author' : null, text: senderName(message) }), tag,
    h('time', { class: 'msg-time', datetime: message.createdAt || '', text: formatTime(message.createdAt) }));
  const main = h('div', { class: 'msg-main' }, meta, bubble, attachmentList(message.attachments, auth.get()?.token, 'agent-attachment'), botDetails(message.bot));
  if ((mine || note) && receipt) main.append(h('div', { class: 'receipt', testid: 'agent-receipt' }));
  if (!mine && !note) {
    const face = sender === 'bot' ? h('span', { class: 'avatar avatar-bot', 'aria-hidden': 'true' }, icon('bot', 15)) : avatar(message.senderName);
    li.append(face);
  }
  li.append(main);
  return li;
}

// What the bot understood and did, for the agent: "bot: intent card_lost, 0.82 · used search_faq".
function botDetails(bot) {
  if (!bot) return null;
  const parts = [];
  if (bot.intent) parts.push(`intent ${bot.intent}`);
  if (typeof bot.confidence === 'number') parts.push(bot.confidence.toFixed(2));
  const processing = bot.processing || {};
  const tools = (processing.rounds || []).flatMap((round) => (round.toolCalls || []).map((call) => call.name));
  const notes = [];
  if (tools.length) notes.push(`used ${[...new Set(tools)].join(', ')}`);
  if (processing.answeredBy) notes.push(`answered by ${processing.answeredBy}`);
  if (processing.fallback) notes.push(`fallback (${processing.failure || 'failed'})`);
  if (!parts.length && !notes.length) return null;
  const text = ['bot: ' + (parts.join(', ') || processing.bot || 'answer'), ...notes].join(' · ');
  return h('div', { class: 'bot-details', testid: 'agent-bot-details', text });
}

function place(chat, li, seq) {
  for (const other of chat.els.list.children) {
    const otherSeq = Number(other.dataset.seq);
    if (!otherSeq || otherSeq > seq) {
      chat.els.list.insertBefore(li, other);
      return;
    }
  }
  chat.els.list.append(li);
}

function regroup(chat) {
  regroupList(chat.els.list);
}

function regroupList(list) {
  let previous = null;
  for (const li of list.children) {
    const key = `${li.dataset.sender}|${li.querySelector('.msg-name')?.textContent || ''}`;
    li.classList.toggle('continued', li.dataset.sender !== 'system' && key === previous);
    const next = li.nextElementSibling;
    const nextKey = next ? `${next.dataset.sender}|${next.querySelector('.msg-name')?.textContent || ''}` : null;
    li.classList.toggle('run-end', nextKey !== key);
    previous = key;
  }
}

function addMessage(chat, message, live) {
  if (!message || typeof message.seq !== 'number' || !message.messageId) return;
  if (chat.ids.has(message.messageId) || chat.seqs.has(message.seq)) return;
  const li = messageElement(message);
  li.dataset.seq = String(message.seq);
  li.dataset.messageId = message.messageId;
  chat.ids.add(message.messageId);
  chat.seqs.set(message.seq, li);
  chat.maxSeq = Math.max(chat.maxSeq, message.seq);
  place(chat, li, message.seq);
  if (message.sender === 'agent') setReceipt(li, message.seq <= chat.customerRead ? 'read' : 'sent');
  else if (message.sender === 'note') setReceipt(li, 'sent');
  regroup(chat);
  if (message.sender === 'customer') setTyping(chat, false);
  if (message.messageType !== 'system' && message.sender !== 'system') {
    const prefix = message.sender === 'agent' && !byMe(message) ? `${message.senderName}: ` : { agent: 'You: ', note: 'Note: ' }[message.sender] || '';
    chat.els.tabPreview.textContent = `${prefix}${message.content || ''}`.slice(0, 90);
    chat.els.tabTime.textContent = formatTime(message.createdAt);
  }
  if (state.activeId === chat.id) renderDetailsSoon(chat);
  if (live) {
    const visible = state.activeId === chat.id && document.visibilityState === 'visible';
    if (message.sender === 'customer' && !visible) {
      chat.unread += 1;
      renderUnread(chat);
      notify(`${message.senderName || 'Customer'}: ${message.content || ''}`, false);
    }
    scrollToEnd(chat, false);
    markRead(chat);
  }
}

function renderUnread(chat) {
  chat.els.badge.hidden = chat.unread === 0;
  chat.els.badge.textContent = chat.unread > 99 ? '99+' : String(chat.unread);
  chat.els.tab.classList.toggle('has-unread', chat.unread > 0);
  updateTitle();
}

function setReceipt(li, status) {
  const box = li.querySelector('.receipt');
  if (!box) return;
  li.dataset.status = status;
  clear(box);
  const label = li.dataset.sender === 'note'
    ? { sending: 'Saving…', sent: 'Saved for your team', failed: 'Not saved' }[status]
    : { sending: 'Sending…', sent: 'Sent', read: 'Read', failed: 'Not delivered' }[status];
  box.title = label;
  if (status === 'sending') box.append(icon('clock', 13), h('span', { text: label }));
  else if (status === 'sent') box.append(icon('check', 14), h('span', { text: label }));
  else if (status === 'read') box.append(icon('checks', 14), h('span', { text: label }));
  else box.append(icon('alert', 13), h('span', { text: label }));
}

function refreshReceipts(chat) {
  for (const [seq, li] of chat.seqs) {
    if (li.classList.contains('mine') && seq <= chat.customerRead) setReceipt(li, 'read');
  }
}

function scrollToEnd(chat, force) {
  const box = chat.els.scroll;
  const near = box.scrollHeight - box.scrollTop - box.clientHeight < 200;
  if (force || near) requestAnimationFrame(() => { box.scrollTop = box.scrollHeight; });
}

function setTyping(chat, on, name) {
  clearTimeout(chat.typingHide);
  if (on) {
    chat.els.typingText.textContent = `${name || chat.session.customerName || 'The customer'} is typing…`;
    chat.els.typing.hidden = false;
    chat.els.tab.classList.add('is-typing');
    chat.typingHide = setTimeout(() => setTyping(chat, false), 12000);
    scrollToEnd(chat, false);
  } else {
    chat.els.typing.hidden = true;
    chat.els.tab.classList.remove('is-typing');
  }
}

function markRead(chat) {
  if (state.activeId !== chat.id || document.visibilityState !== 'visible' || chat.released) return;
  if (!socket || !socket.open || chat.maxSeq <= chat.markedRead) return;
  const upTo = chat.maxSeq;
  chat.markedRead = upTo;
  socket.request('agent:mark_read', { sessionId: chat.id, upToSeq: upTo }).catch(() => {
    if (chat.markedRead === upTo) chat.markedRead = 0;
  });
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  state.newWhileHidden = 0;
  const chat = state.chats.get(state.activeId);
  if (chat) {
    chat.unread = 0;
    renderUnread(chat);
    markRead(chat);
  }
  updateTitle();
});

// ------------------------------------------------------------------ sending

function onInput(chat) {
  const value = chat.els.input.value;
  if (!socket?.open || chat.closed || chat.released || chat.mode === 'note') return;
  if (!value.trim()) {
    stopTyping(chat);
    return;
  }
  const now = Date.now();
  if (now - chat.typingSentAt > 4000) {
    chat.typingSentAt = now;
    socket.request('agent:typing', { sessionId: chat.id }).catch(() => {});
  }
  clearTimeout(chat.typingTimer);
  chat.typingTimer = setTimeout(() => stopTyping(chat), 3500);
}

function stopTyping(chat) {
  clearTimeout(chat.typingTimer);
  if (!chat.typingSentAt) return;
  chat.typingSentAt = 0;
  if (socket?.open) socket.request('agent:stop_typing', { sessionId: chat.id }).catch(() => {});
}

function send(chat) {
  const text = chat.els.input.value.replace(/\s+$/, '');
  const note = chat.mode === 'note';
  const file = note ? null : chat.pendingFile;
  if ((!text.trim() && !file) || chat.closed || chat.released) return;
  if (text.length > MAX_CONTENT) {
    toast(`A ${note ? 'note' : 'message'} can have at most ${MAX_CONTENT} characters.`, 'error');
    return;
  }
  closeCanned(chat);
  chat.typingSentAt = 0;
  clearTimeout(chat.typingTimer);
  if (file) uploadAndSend(chat, file, text);
  else queueMessage(chat, text, { note });
  chat.els.input.value = '';
  chat.els.input.focus();
}

// A reply or a private note goes through the same outbox: shown at once,
// sent with its own clientMsgId (resent with the same one after a lost
// connection or a refusal worth retrying), placed by seq when acknowledged.
function queueMessage(chat, content, { attachments = null, shown, note = false } = {}) {
  const item = { clientMsgId: newId(note ? 'n-' : 'a-'), content, attachments, note, state: 'queued' };
  item.el = messageElement({ sender: note ? 'note' : 'agent', senderName: state.login?.name, content, createdAt: new Date().toISOString(), attachments: shown });
  item.el.dataset.clientMsgId = item.clientMsgId;
  setReceipt(item.el, 'sending');
  chat.els.list.append(item.el);
  regroup(chat);
  chat.outbox.push(item);
  scrollToEnd(chat, true);
  flushOutbox(chat);
}

function flushOutbox(chat) {
  if (!socket?.open) return;
  for (const item of chat.outbox) {
    if (item.state !== 'queued') continue;
    item.state = 'sending';
    const data = { sessionId: chat.id, content: item.content, clientMsgId: item.clientMsgId };
    if (item.attachments) data.attachments = item.attachments;
    socket.request(item.note ? 'agent:send_note' : 'agent:send_message', data).catch((error) => {
      if (!chat.outbox.includes(item)) return;
      if (error.code === 'disconnected') { item.state = 'queued'; return; }
      if (error.code === 'rate_limited') {
        const wait = Math.max(1, Number(error.retryAfter) || 5);
        item.state = 'queued';
        toast(`Too many ${item.note ? 'notes and messages' : 'messages'} in this chat for now; sending again in ${Math.ceil(wait)} s.`, 'error');
        setTimeout(() => flushOutbox(chat), wait * 1000);
        return;
      }
      if (['timeout', 'database_unavailable', 'internal'].includes(error.code)) {
        item.state = 'queued';
        setTimeout(() => flushOutbox(chat), 1500);
        return;
      }
      chat.outbox.splice(chat.outbox.indexOf(item), 1);
      markFailed(item, error.message || error.code);
    });
  }
}

function acknowledge(data) {
  const chat = state.chats.get(data.sessionId);
  if (!chat) return;
  const index = chat.outbox.findIndex((item) => item.clientMsgId === data.clientMsgId);
  if (index < 0) return;
  const [item] = chat.outbox.splice(index, 1);
  if (chat.ids.has(data.messageId) || chat.seqs.has(data.seq)) {
    item.el.remove();
    regroup(chat);
    return;
  }
  chat.ids.add(data.messageId);
  chat.seqs.set(data.seq, item.el);
  chat.maxSeq = Math.max(chat.maxSeq, data.seq);
  item.el.dataset.seq = String(data.seq);
  item.el.dataset.messageId = data.messageId;
  place(chat, item.el, data.seq);
  setReceipt(item.el, !item.note && data.seq <= chat.customerRead ? 'read' : 'sent');
  regroup(chat);
  chat.els.tabPreview.textContent = `${item.note ? 'Note: ' : 'You: '}${item.content}`.slice(0, 90);
  chat.els.tabTime.textContent = formatTime(data.createdAt);
}

function markFailed(item, reason) {
  setReceipt(item.el, 'failed');
  item.el.querySelector('.receipt')?.append(h('span', { text: ` · ${reason}` }));
}

// ------------------------------------------------------------------ attachments

function pickFile(chat, file) {
  if (!UPLOAD_TYPES.test(file.type || '')) {
    toast('Only images (PNG, JPEG, GIF, WebP), PDF and plain-text files can be attached.', 'error');
    return;
  }
  if (file.size > MAX_UPLOAD) {
    toast(`That file is ${formatSize(file.size)}; the limit is 10 MB.`, 'error');
    return;
  }
  chat.pendingFile = file;
  const preview = clear(chat.els.preview);
  preview.append(icon('file', 16), h('span', { class: 'file-name', text: file.name }), h('span', { class: 'file-size', text: formatSize(file.size) }),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Remove attachment', onclick: () => clearFile(chat) }, icon('close', 14)));
  preview.hidden = false;
}

function clearFile(chat) {
  chat.pendingFile = null;
  clear(chat.els.preview).hidden = true;
}

async function uploadAndSend(chat, file, text) {
  const form = new FormData();
  form.append('sessionId', chat.id);
  form.append('file', file, file.name);
  chat.els.send.disabled = true;
  let response;
  try {
    response = await fetch('/api/uploads', { method: 'POST', headers: { Authorization: `Bearer ${auth.get()?.token}` }, body: form });
  } catch {
    response = null;
  }
  chat.els.send.disabled = false;
  if (response && (response.status === 201 || response.ok)) {
    const uploaded = await response.json();
    clearFile(chat);
    queueMessage(chat, text.trim() ? text : uploaded.fileName || file.name, { attachments: [uploaded.attachmentId], shown: [uploaded] });
    return;
  }
  if (response && (response.status === 404 || response.status === 405)) {
    state.uploadsUnavailable = true;
    clearFile(chat);
    for (const other of state.chats.values()) renderChatHeader(other);
    toast('Attachments are not available on this server yet.', 'error');
    if (text.trim()) queueMessage(chat, text);
    return;
  }
  let message = 'network error';
  if (response) message = (await response.json().catch(() => ({}))).message || `HTTP ${response.status}`;
  chat.els.input.value = text;
  toast(`The file could not be uploaded: ${message}`, 'error');
}

// ------------------------------------------------------------------ partners

// Partner organisations (GET /api/partners), read each time the dialog opens.
const partnerOrgs = remoteList('/api/partners', () => renderPartners());
let partnerChat = null;

function openPartners(chat) {
  partnerChat = chat;
  $('partner-form').reset();
  showPartnerError(null);
  renderPartners();
  $('partner-dialog').showModal();
  partnerOrgs.load();
}

function showPartnerError(message) {
  $('partner-error').textContent = message || '';
  $('partner-error').hidden = !message;
}

function partnersChanged(chat, event, data) {
  const partners = (chat.session.partners || []).filter((p) => p.partnerOrgId !== data.partnerOrgId);
  if (event === 'partner:joined') partners.push({ partnerOrgId: data.partnerOrgId, name: data.name, withHistory: data.withHistory });
  chat.session.partners = partners;
  renderChatHeader(chat);
  if (partnerChat === chat) renderPartners();
}

function renderPartners() {
  const chat = partnerChat;
  if (!chat) return;
  const current = chat.session.partners || [];
  const list = clear($('partner-current'));
  if (!current.length) list.append(h('li', { class: 'empty-small', text: 'No partner in this chat yet.' }));
  for (const partner of current) {
    list.append(h('li', { class: 'partner-item', testid: 'agent-partner-item' },
      avatar(partner.name),
      h('span', { class: 'partner-name', text: partner.name }),
      h('span', { class: 'muted', text: partner.withHistory ? 'with the history' : 'from the invitation on' }),
      h('button', { class: 'btn btn-sm btn-danger-soft', type: 'button', testid: 'agent-partner-remove', onclick: (event) => removePartner(chat, partner, event.currentTarget) }, 'Remove')));
  }
  const select = clear($('partner-form').elements.partner);
  const inChat = new Set(current.map((p) => p.partnerOrgId));
  const choices = partnerOrgs.items.filter((org) => !inChat.has(org.id));
  select.append(h('option', { value: '', text: partnerOrgs.loaded ? (choices.length ? 'Choose a partner…' : 'No other partner to invite') : 'Loading…' }));
  for (const org of choices) select.append(h('option', { value: org.id, text: org.name }));
  if (partnerOrgs.error) showPartnerError(partnerOrgs.error.message || 'The partners could not be loaded.');
  const live = !chat.closed && !chat.released;
  $('partner-form').querySelector('[data-testid=agent-partner-invite]').disabled = !live || !choices.length;
}

async function removePartner(chat, partner, button) {
  button.disabled = true;
  try {
    await socket.request('agent:remove_partner', { sessionId: chat.id, partnerOrgId: partner.partnerOrgId });
  } catch (error) {
    showPartnerError(error.message || 'The partner could not be removed.');
    button.disabled = false;
  }
}

$('partner-cancel').addEventListener('click', () => $('partner-dialog').close());
$('partner-dialog').addEventListener('close', () => { partnerChat = null; });
$('partner-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const chat = partnerChat;
  const form = $('partner-form');
  const partnerOrgId = form.elements.partner.value;
  if (!chat) return;
  if (!partnerOrgId) {
    showPartnerError('Choose a partner to invite.');
    return;
  }
  showPartnerError(null);
  const button = form.querySelector('[data-testid=agent-partner-invite]');
  button.disabled = true;
  try {
    const reply = await socket.request('agent:invite_partner', { sessionId: chat.id, partnerOrgId, withHistory: form.elements.history.checked });
    partnersChanged(chat, 'partner:joined', reply.data);
    form.reset();
    renderPartners();
  } catch (error) {
    showPartnerError(error.message || 'The partner could not be invited.');
  } finally {
    renderPartners();
  }
});

// ------------------------------------------------------------------ transfer + close

// The transfer dialog: back to the queue, straight to a named agent (online
// with a free slot), or to a team's queue. The agents and teams are read each
// time it opens (GET /api/agents, GET /api/teams), and again on Refresh.
const transfer = { chat: null, agents: [], teams: [], loading: false, error: null, token: 0, busy: false };

const PRESENCE = { online: 'Online', away: 'Away', offline: 'Offline' };

function openTransfer(chat) {
  transfer.chat = chat;
  const form = $('transfer-form');
  form.reset();
  transfer.agents = [];
  transfer.teams = [];
  transfer.error = null;
  transfer.busy = false;
  showTransferError(null);
  renderTransfer();
  $('transfer-dialog').showModal();
  loadTransferOptions();
}

async function loadTransferOptions() {
  const token = auth.get()?.token;
  transfer.token += 1;
  const mine = transfer.token;
  transfer.loading = true;
  renderTransferAgents();
  const [agents, teams] = await Promise.all([api('/api/agents', { token }), api('/api/teams', { token })]);
  if (mine !== transfer.token) return;
  transfer.loading = false;
  transfer.error = !agents.ok ? agents.error : !teams.ok ? teams.error : null;
  if (agents.ok && Array.isArray(agents.data)) transfer.agents = agents.data;
  if (teams.ok && Array.isArray(teams.data)) transfer.teams = teams.data;
  renderTransfer();
}

function agentAvailable(agent) {
  return agent.status === 'online' && agent.activeSessions < agent.maxConcurrent;
}

/** Why an agent cannot take the chat now, or null. */
function agentUnavailableWhy(agent) {
  if (agent.status === 'offline') return 'Offline';
  if (agent.status !== 'online') return `${PRESENCE[agent.status] || agent.status}: gets no chats`;
  if (agent.activeSessions >= agent.maxConcurrent) return 'No free slot';
  return null;
}

function transferTarget() {
  return $('transfer-form').elements.destination.value || 'queue';
}

function renderTransfer() {
  const target = transferTarget();
  $('transfer-agent-panel').hidden = target !== 'agent';
  $('transfer-team-field').hidden = target !== 'team';
  // A chat handed to a named agent keeps its priority and needs no reason for the queue.
  $('transfer-priority-field').hidden = target === 'agent';
  $('transfer-reason-field').hidden = target === 'agent';
  $('transfer-lead').textContent = {
    queue: 'The next available agent will pick this chat up. It will not come back to you automatically.',
    agent: 'The chat goes straight to the agent you choose, with its whole history. They must be online with a free slot.',
    team: 'The chat goes back to the queue for that team: its agents get it first while any of them is online, anyone else only when none is.',
  }[target];
  renderTransferAgents();
  renderTransferTeams();
  renderTransferConfirm();
}

function renderTransferConfirm() {
  const form = $('transfer-form');
  const target = transferTarget();
  const confirm = form.querySelector('[data-testid=agent-transfer-confirm]');
  const agent = selectedAgent();
  const team = transfer.teams.find((item) => item.id === form.team.value);
  confirm.textContent = transfer.busy ? 'Transferring…' : {
    queue: 'Return to queue',
    agent: agent ? `Transfer to ${agent.name}` : 'Transfer',
    team: team ? `Send to ${team.name}` : 'Send to the team',
  }[target];
  confirm.disabled = transfer.busy;
}

function selectedAgent() {
  const id = $('transfer-form').querySelector('input[name=agent]:checked')?.value;
  return id ? transfer.agents.find((agent) => agent.agentId === id) : null;
}

function renderTransferAgents() {
  const list = $('transfer-agents');
  const chosen = list.querySelector('input[name=agent]:checked')?.value;
  clear(list);
  const me = state.me?.agentId || state.login?.userId;
  const teamName = new Map(transfer.teams.map((team) => [team.id, team.name]));
  const others = transfer.agents
    .filter((agent) => agent.agentId !== me)
    .sort((a, b) => Number(agentAvailable(b)) - Number(agentAvailable(a))
      || ['online', 'away', 'offline'].indexOf(a.status) - ['online', 'away', 'offline'].indexOf(b.status)
      || a.name.localeCompare(b.name));
  for (const agent of others) {
    const why = agentUnavailableWhy(agent);
    const teams = (agent.teamIds || []).map((id) => teamName.get(id)).filter(Boolean);
    list.append(h('li', {},
      h('label', {
        class: `agent-pick${why ? ' is-unavailable' : ''}`, testid: 'agent-transfer-agent',
        dataset: { agentId: agent.agentId, status: agent.status, available: String(!why) }, title: why || `Transfer to ${agent.name}`,
      },
      h('input', { type: 'radio', name: 'agent', value: agent.agentId, disabled: Boolean(why), checked: !why && agent.agentId === chosen, onchange: () => { showTransferError(null); renderTransferConfirm(); } }),
      avatar(agent.name),
      h('span', { class: 'agent-pick-main' },
        h('span', { class: 'agent-pick-name', testid: 'agent-transfer-agent-name', text: agent.name }),
        h('span', { class: 'agent-pick-sub' },
          h('span', { class: `pick-presence pick-presence-${agent.status}`, testid: 'agent-transfer-agent-status', text: why && agent.status === 'online' ? `Online · ${why.toLowerCase()}` : PRESENCE[agent.status] || agent.status }),
          teams.length ? h('span', { class: 'agent-pick-teams', text: teams.join(', ') }) : null)),
      h('span', { class: 'agent-pick-load', testid: 'agent-transfer-agent-load', title: 'Open chats / capacity', text: `${agent.activeSessions}/${agent.maxConcurrent}` }))));
  }
  if (!others.length) {
    let text = 'No other agents yet.';
    if (transfer.loading) text = 'Loading the agents…';
    else if (transfer.error) text = `The agents could not be loaded: ${transfer.error.message || transfer.error.error}`;
    list.append(h('li', { class: 'agent-picks-empty', testid: 'agent-transfer-agents-empty', text }));
  }
  $('transfer-refresh').disabled = transfer.loading;
}

function renderTransferTeams() {
  const select = $('transfer-form').team;
  const chosen = select.value;
  clear(select);
  const online = new Set(transfer.agents.filter((agent) => agent.status === 'online').map((agent) => agent.agentId));
  for (const team of transfer.teams) {
    const members = team.members || [];
    const here = members.filter((member) => online.has(member.agentId)).length;
    select.append(h('option', { value: team.id, text: `${team.name} · ${here} of ${members.length} online` }));
  }
  if (!transfer.teams.length) {
    select.append(h('option', { value: '', text: transfer.loading ? 'Loading the teams…' : 'No teams yet' }));
  }
  if (transfer.teams.some((team) => team.id === chosen)) select.value = chosen;
  select.disabled = !transfer.teams.length;
  const team = transfer.teams.find((item) => item.id === select.value);
  const hint = $('transfer-team-hint');
  hint.textContent = team && !(team.members || []).some((member) => online.has(member.agentId))
    ? 'Nobody in this team is online: the chat goes to whoever is free first.'
    : '';
  hint.hidden = !hint.textContent;
}

function showTransferError(text) {
  const box = $('transfer-error');
  box.textContent = text || '';
  box.hidden = !text;
}

function transferErrorText(error, agent, team) {
  switch (error.code) {
    case 'agent_unavailable':
      return `${agent?.name || 'That agent'} cannot take this chat now: they are not online or have no free slot. The list is up to date again; choose someone else.`;
    case 'not_found':
      return team ? `The team ${team.name} no longer exists.` : (error.message || 'Not found.');
    case 'forbidden':
      return 'This chat is no longer yours to transfer.';
    case 'conflict':
      return 'This chat changed meanwhile and was not transferred.';
    case 'session_closed':
      return 'The chat has ended.';
    case 'disconnected':
    case 'timeout':
      return 'Not connected to the server: the chat was not transferred. Try again in a moment.';
    default:
      return `Could not transfer: ${error.message || error.code}`;
  }
}

async function submitTransfer() {
  const chat = transfer.chat;
  if (!chat || transfer.busy) return;
  const form = $('transfer-form');
  const target = transferTarget();
  const data = { sessionId: chat.id };
  const agent = target === 'agent' ? selectedAgent() : null;
  const team = target === 'team' ? transfer.teams.find((item) => item.id === form.team.value) : null;
  if (target === 'agent') {
    if (!agent) {
      showTransferError('Choose the agent to transfer this chat to.');
      return;
    }
    data.toAgentId = agent.agentId;
  } else {
    if (target === 'team') {
      if (!team) {
        showTransferError('Choose the team to send this chat to.');
        return;
      }
      data.toTeamId = team.id;
    }
    if (form.priority.value) data.priority = form.priority.value;
    if (form.reason.value.trim()) data.reason = form.reason.value.trim();
  }
  showTransferError(null);
  transfer.busy = true;
  renderTransfer();
  try {
    await socket.request('agent:transfer', data);
    transfer.busy = false;
    if (transfer.chat === chat) $('transfer-dialog').close();
    const who = chat.session.customerName || 'The chat';
    if (agent) toast(`${who} is now with ${agent.name}.`);
    else if (team) toast(`${who} is in the queue for ${team.name}.`);
    else toast(`${who} is back in the queue.`);
    if (state.chats.get(chat.id) === chat) removeChat(chat);
  } catch (error) {
    transfer.busy = false;
    renderTransfer();
    showTransferError(transferErrorText(error, agent, team));
    if (error.code === 'agent_unavailable' || (error.code === 'not_found' && team)) loadTransferOptions();
  }
}

$('transfer-refresh').append(icon('refresh', 15));
$('transfer-refresh').addEventListener('click', () => loadTransferOptions());
$('transfer-cancel').addEventListener('click', () => $('transfer-dialog').close());
$('transfer-form').addEventListener('change', (event) => {
  if (event.target.name === 'destination' || event.target.name === 'team') {
    showTransferError(null);
    renderTransfer();
  }
});
$('transfer-form').addEventListener('submit', (event) => {
  event.preventDefault();
  submitTransfer();
});
$('transfer-dialog').addEventListener('close', () => {
  transfer.token += 1;
  transfer.chat = null;
});

let dialogChat = null;

function openClose(chat) {
  dialogChat = chat;
  $('close-form').reset();
  $('close-dialog').showModal();
}

$('close-dialog').addEventListener('close', async () => {
  const chat = dialogChat;
  if ($('close-dialog').returnValue !== 'confirm' || !chat) return;
  const form = $('close-form');
  const data = { sessionId: chat.id, resolved: form.resolved.value === 'yes' };
  if (form.notes.value.trim()) data.notes = form.notes.value.trim();
  try {
    await socket.request('agent:close_session', data);
    // Stored as sent: shown with the closed chat's details and in the customer's chat list.
    chat.session.notes = data.notes || null;
    const past = state.customers.get(chat.session.customerId)?.data?.sessions?.find((item) => item.sessionId === chat.id);
    if (past) past.notes = chat.session.notes;
    if (state.activeId === chat.id) renderDetails(chat);
  } catch (error) {
    if (error.code === 'session_closed') closed(chat.id, 'closed');
    else toast(`Could not close: ${error.message || error.code}`, 'error');
  }
});

// ------------------------------------------------------------------ transcript by email

let transcriptChat = null;

/** Asks where to email the chat's transcript: the customer's own address when they gave one. */
function openEmailTranscript(chat) {
  transcriptChat = chat;
  const form = $('email-transcript-form');
  form.reset();
  form.email.value = state.customers.get(chat.session.customerId)?.data?.email || '';
  showEmailTranscriptError(null);
  $('email-transcript-dialog').showModal();
  form.email.focus();
}

function showEmailTranscriptError(text) {
  const box = $('email-transcript-error');
  box.textContent = text || '';
  box.hidden = !text;
}

$('email-transcript-cancel').addEventListener('click', () => $('email-transcript-dialog').close());
$('email-transcript-dialog').addEventListener('close', () => { transcriptChat = null; });
$('email-transcript-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const chat = transcriptChat;
  const form = $('email-transcript-form');
  if (!chat) return;
  const email = form.email.value.trim();
  const send = form.querySelector('[type=submit]');
  send.disabled = true;
  const result = await api(`/api/sessions/${encodeURIComponent(chat.id)}/transcript`, { method: 'POST', token: auth.get()?.token, body: { email } });
  send.disabled = false;
  if (result.ok) {
    $('email-transcript-dialog').close();
    toast(`Transcript on its way to ${result.data?.to || email}`);
    return;
  }
  showEmailTranscriptError({
    invalid_email: 'That is not an email address.',
    limit_reached: 'This chat\'s transcript has been sent as often as allowed.',
    mail_unavailable: 'This server does not send email.',
    forbidden: 'This chat is no longer yours.',
  }[result.error.error] || result.error.message || 'The transcript could not be sent.');
});

// ------------------------------------------------------------------ details column

function detailRow(label, value, testid) {
  if (value === null || value === undefined || value === '') return null;
  return h('div', { class: 'detail-row' }, h('dt', { text: label }), h('dd', { testid }, value));
}

let detailsFrame = 0;
function renderDetailsSoon(chat) {
  cancelAnimationFrame(detailsFrame);
  detailsFrame = requestAnimationFrame(() => { if (state.activeId === chat.id) renderDetails(chat); });
}

function renderDetails(chat) {
  const box = clear($('details'));
  if (!chat) {
    showDetailsOver(false);
    return;
  }
  const s = chat.session;
  const meta = s.metadata && typeof s.metadata === 'object' ? s.metadata : {};
  // The visitor's browser reports the page and its title, so either may be
  // made up: the link shows where it really leads, never the title, and the
  // title is only text, marked as the browser's claim.
  let page = null;
  if (typeof meta.page === 'string') {
    try {
      const url = new URL(meta.page);
      page = /^https?:$/.test(url.protocol)
        ? h('a', { href: url.href, title: url.href, target: '_blank', rel: 'noopener noreferrer', testid: 'agent-detail-page-link', text: `${url.host}${url.pathname}` })
        : meta.page;
    } catch { page = meta.page; }
  }
  const pageTitle = typeof meta.pageTitle === 'string' && meta.pageTitle.trim()
    ? h('span', {}, h('span', { testid: 'agent-detail-page-title', text: meta.pageTitle.trim() }), h('small', { class: 'muted', text: ' · as reported by the visitor\'s browser' }))
    : null;
  box.append(
    h('button', { class: 'icon-btn details-close', type: 'button', testid: 'agent-details-close', title: 'Close', 'aria-label': 'Close the customer details', onclick: () => showDetailsOver(false) }, icon('close', 18)),
    h('div', { class: 'details-card' },
      avatar(s.customerName, 'avatar-xl'),
      h('h3', { text: s.customerName || 'Visitor' }),
      h('p', { class: 'muted', text: chat.closed ? 'Chat closed' : 'Chatting with you' })),
    labelsPanel(chat),
    h('dl', { class: 'details-list' },
      detailRow('Priority', h('span', { class: `prio prio-${s.priority}`, text: s.priority })),
      detailRow('Started', formatTime(s.createdAt)),
      detailRow('Title', s.title),
      detailRow('Category', s.category),
      detailRow('Page', page),
      detailRow('Page title', pageTitle),
      detailRow('Context', s.botContext),
      detailRow('Language', typeof meta.language === 'string' ? meta.language : null),
      detailRow('Referrer', typeof meta.referrer === 'string' ? meta.referrer : null),
      detailRow('Messages', String(chat.seqs.size)),
      detailRow('Session', h('code', { text: chat.id.slice(0, 8) })),
      detailRow('Close note', s.notes ? closeNote(s.notes) : null, 'agent-detail-close-note')),
    customerPanel(chat),
  );
}

// ------------------------------------------------------------------ labels

/** Reads the chat's labels (the socket's session has none): GET /api/sessions/{id}. */
async function loadChatLabels(chat) {
  const result = await api(`/api/sessions/${encodeURIComponent(chat.id)}`, { token: auth.get()?.token });
  if (state.chats.get(chat.id) !== chat) return;
  if (result.ok) {
    chat.labels = Array.isArray(result.data?.labels) ? result.data.labels : [];
    chat.labelsError = null;
  } else if (chat.labels === null) {
    chat.labelsError = `The labels could not be loaded: ${result.error.message || result.error.error}`;
  }
  if (state.activeId === chat.id) renderDetails(chat);
}

/** Puts exactly these labels on the chat (PUT /api/sessions/{id}/labels). */
async function setChatLabels(chat, names, focusName) {
  if (chat.labelsSaving) return;
  chat.labelsSaving = true;
  chat.labelsError = null;
  if (state.activeId === chat.id) renderDetails(chat);
  const result = await api(`/api/sessions/${encodeURIComponent(chat.id)}/labels`, { method: 'PUT', token: auth.get()?.token, body: { labels: names } });
  chat.labelsSaving = false;
  if (state.chats.get(chat.id) !== chat) return;
  if (result.ok) {
    chat.labels = Array.isArray(result.data?.labels) ? result.data.labels : names;
  } else if (result.status === 400 && /no such label/.test(result.error.message || '')) {
    chat.labelsError = 'That label no longer exists: an admin removed it. The list is up to date again.';
    labelCatalog.load();
  } else if (result.status === 403) {
    chat.labelsError = 'Only the chat\'s agent can change its labels, and this chat is no longer yours.';
  } else {
    chat.labelsError = `The labels were not changed: ${result.error.message || result.error.error}`;
  }
  if (state.activeId !== chat.id) return;
  renderDetails(chat);
  const again = focusName && [...$('details').querySelectorAll('[data-testid=agent-label-option]')].find((node) => node.dataset.name === focusName);
  (again || $('details').querySelector('[data-testid=agent-labels-add]'))?.focus();
}

function labelColor(name) {
  const found = labelCatalog.items.find((label) => label.name === name);
  return /^#[0-9a-f]{6}$/i.test(found?.color || '') ? found.color : '#94a3b8';
}

/** A label drawn in its colour: a dot, and a tint of it behind the name. */
function tinted(node, color) {
  const [r, g, b] = [1, 3, 5].map((at) => parseInt(color.slice(at, at + 2), 16));
  Object.assign(node.style, { backgroundColor: `rgba(${r}, ${g}, ${b}, 0.13)`, borderColor: `rgba(${r}, ${g}, ${b}, 0.45)` });
  return node;
}

function labelDot(color) {
  return h('span', { class: 'label-dot', 'aria-hidden': 'true', style: { backgroundColor: color } });
}

function labelsPanel(chat) {
  const editable = !chat.released && chat.labels !== null;
  const add = h('button', {
    class: 'btn btn-sm btn-ghost labels-add', type: 'button', testid: 'agent-labels-add', 'aria-expanded': String(chat.labelPicker),
    disabled: !editable, title: 'Add or remove labels',
    onclick: () => {
      chat.labelPicker = !chat.labelPicker;
      if (chat.labelPicker) labelCatalog.load();
      renderDetails(chat);
    },
  }, icon(chat.labelPicker ? 'close' : 'plus', 14), h('span', { text: chat.labelPicker ? 'Done' : 'Add' }));
  const section = h('section', { class: 'labels-panel', testid: 'agent-labels', 'aria-label': 'Labels', 'aria-busy': String(chat.labelsSaving) },
    h('div', { class: 'details-title' }, h('h3', { text: 'Labels' }), add));
  const names = chat.labels || [];
  if (names.length) {
    section.append(h('ul', { class: 'label-chips', testid: 'agent-label-chips' }, names.map((name) => {
      const color = labelColor(name);
      return tinted(h('li', { class: 'label-chip', testid: 'agent-label-chip', dataset: { name, color } },
        labelDot(color), h('span', { class: 'label-name', text: name }),
        editable ? h('button', {
          class: 'label-remove', type: 'button', testid: 'agent-label-remove', title: `Remove “${name}”`, 'aria-label': `Remove the label ${name}`,
          disabled: chat.labelsSaving, onclick: () => setChatLabels(chat, names.filter((other) => other !== name)),
        }, icon('close', 11)) : null), color);
    })));
  } else if (chat.labels !== null && !chat.labelPicker) {
    section.append(h('p', { class: 'details-note', testid: 'agent-labels-none', text: 'No labels on this chat.' }));
  } else if (chat.labels === null && !chat.labelsError) {
    section.append(h('p', { class: 'details-note', text: 'Loading the labels…' }));
  }
  if (chat.labelPicker && editable) section.append(labelPicker(chat));
  if (chat.labelsError) section.append(h('p', { class: 'form-error', role: 'alert', testid: 'agent-labels-error', text: chat.labelsError }));
  return section;
}

function labelPicker(chat) {
  const on = new Set(chat.labels || []);
  const box = h('div', { class: 'label-picker', testid: 'agent-label-picker', role: 'group', 'aria-label': 'Labels to put on this chat' });
  for (const label of labelCatalog.items) {
    const checked = on.has(label.name);
    box.append(h('button', {
      type: 'button', class: 'label-option', role: 'menuitemcheckbox', 'aria-checked': String(checked), testid: 'agent-label-option',
      dataset: { name: label.name }, disabled: chat.labelsSaving,
      onclick: () => setChatLabels(chat, checked ? [...on].filter((name) => name !== label.name) : [...on, label.name], label.name),
    }, labelDot(labelColor(label.name)), h('span', { class: 'label-name', text: label.name }), checked ? icon('check', 14) : null));
  }
  if (!labelCatalog.items.length) {
    let text = 'No labels yet: admins create them on the admin page.';
    if (labelCatalog.error) text = `The labels could not be loaded: ${labelCatalog.error.message || labelCatalog.error.error}`;
    else if (!labelCatalog.loaded) text = 'Loading the labels…';
    box.append(h('p', { class: 'details-note', text }));
  }
  return box;
}

/** On narrow screens the details column slides over the chat instead of sitting beside it. */
function showDetailsOver(open) {
  if (open) $('workspace').dataset.details = 'open';
  else delete $('workspace').dataset.details;
}

// ------------------------------------------------------------------ the customer panel

const dayFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric', hour: 'numeric', minute: '2-digit' });

function formatDay(iso, withTime = false) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return '';
  return (withTime ? dayTimeFormat : dayFormat).format(date);
}

/** Loads what is known of the chat's customer: at once when forced, else when it is older than a minute. */
async function loadCustomer(chat, { force = false } = {}) {
  const customerId = chat.session?.customerId;
  if (!customerId) return;
  const entry = state.customers.get(customerId) || { data: null, at: 0 };
  if (entry.loading || (!force && Date.now() - entry.at < 60000)) return;
  entry.loading = true;
  state.customers.set(customerId, entry);
  const result = await api(`/api/customers/${encodeURIComponent(customerId)}`, { token: auth.get()?.token });
  entry.loading = false;
  entry.at = Date.now();
  if (state.customers.get(customerId) !== entry) return; // signed out meanwhile
  if (result.ok) {
    entry.data = result.data;
    entry.error = null;
  } else {
    entry.error = result.error;
    entry.status = result.status;
  }
  const active = state.chats.get(state.activeId);
  if (active && active.session.customerId === customerId) renderDetails(active);
}

function customerPanel(chat) {
  const entry = state.customers.get(chat.session.customerId);
  const refresh = h('button', {
    class: 'icon-btn icon-btn-sm', type: 'button', testid: 'agent-customer-refresh', title: 'Refresh', 'aria-label': 'Refresh the customer',
    disabled: Boolean(entry?.loading), onclick: () => loadCustomer(chat, { force: true }),
  }, icon('refresh', 15));
  const section = h('section', { class: 'customer-panel', testid: 'agent-customer', 'aria-label': 'Customer' },
    h('div', { class: 'details-title' }, h('h3', { text: 'Customer' }), refresh));
  const customer = entry?.data;
  if (!customer) {
    let text = 'Loading the customer…';
    if (entry?.error) {
      text = entry.status === 403
        ? 'The customer\'s profile is shown while one of their chats is open with you.'
        : `The customer could not be loaded: ${entry.error.message || entry.error.error}`;
    }
    section.append(h('p', { class: 'details-note', testid: 'agent-customer-status', text }));
    return section;
  }
  section.dataset.customerId = customer.customerId;
  section.append(
    h('dl', { class: 'details-list' },
      detailRow('Name', customer.name || 'Visitor', 'agent-customer-name'),
      detailRow('Email', customer.email || h('span', { class: 'muted', text: 'Not given' }), 'agent-customer-email'),
      detailRow('First seen', formatDay(customer.firstSeen, true), 'agent-customer-first-seen'),
      detailRow('Last seen', customer.lastSeen ? formatDay(customer.lastSeen, true) : null, 'agent-customer-last-seen')),
    visitorInfo(customer.visitor, chat),
    pastChats(customer, chat),
  );
  return section;
}

/**
 * The latest chat's metadata, every key as the widget or the host site sent
 * it, as text. Folded when it is this chat's (its page and language are
 * shown above already).
 */
function visitorInfo(visitor, chat) {
  const entries = visitor && typeof visitor === 'object' && !Array.isArray(visitor) ? Object.entries(visitor) : [];
  if (!entries.length) return null;
  const thisChat = JSON.stringify(visitor) === JSON.stringify(chat.session.metadata || {});
  const open = chat.visitorOpen ?? !thisChat;
  const box = h('details', { class: 'visitor', testid: 'agent-customer-visitor', open },
    h('summary', {}, 'Visitor info ', h('span', { class: 'muted', text: `· ${entries.length} ${entries.length === 1 ? 'field' : 'fields'}${thisChat ? ' · this chat' : ' · latest chat'}` })),
    h('dl', { class: 'visitor-list' }, entries.slice(0, 50).map(([key, value]) => h('div', { class: 'detail-row', testid: 'agent-visitor-row', dataset: { key } },
      h('dt', { text: key }),
      value === '' || value === null
        ? h('dd', { class: 'muted', text: '—' })
        : h('dd', { text: (typeof value === 'string' ? value : JSON.stringify(value)).slice(0, 500) })))));
  box.addEventListener('toggle', () => { chat.visitorOpen = box.open; });
  return box;
}

const OUTCOMES = {
  resolved: 'Resolved',
  closed_by_agent: 'Closed, not resolved',
  customer_ended: 'Ended by the customer',
  abandoned: 'Abandoned',
};

/** {kind, label} of how a chat ended, or where it stands. */
function outcomeOf(past) {
  if (past.status === 'closed') {
    if (past.isResolved || past.endedReason === 'resolved') return { kind: 'resolved', label: OUTCOMES.resolved };
    return { kind: past.endedReason || 'closed', label: OUTCOMES[past.endedReason] || 'Closed' };
  }
  return { kind: 'open', label: { assigned: 'Open', waiting: 'Waiting in the queue', bot: 'With the bot' }[past.status] || past.status };
}

function ratingStars(rating, comment) {
  if (!(rating >= 1 && rating <= 5)) return h('span', { class: 'stars muted', testid: 'agent-past-chat-rating', dataset: { rating: '' }, text: 'Not rated' });
  return h('span', {
    class: 'stars', testid: 'agent-past-chat-rating', dataset: { rating: String(rating) },
    title: comment ? `Rated ${rating} of 5: “${comment}”` : `Rated ${rating} of 5`, 'aria-label': `Rated ${rating} of 5`,
  }, h('span', { class: 'stars-on', 'aria-hidden': 'true', text: '★'.repeat(rating) }), h('span', { class: 'stars-off', 'aria-hidden': 'true', text: '★'.repeat(5 - rating) }));
}

function closeNote(text) {
  return h('span', { class: 'close-note' }, icon('lock', 12), h('span', { text }));
}

function pastChats(customer, chat) {
  const sessions = Array.isArray(customer.sessions) ? customer.sessions : [];
  const earlier = sessions.filter((past) => past.sessionId !== chat.id).length;
  const list = h('ol', { class: 'past-chats', testid: 'agent-past-chats' });
  for (const past of sessions) {
    const current = past.sessionId === chat.id;
    const outcome = outcomeOf(past);
    const lines = [
      h('span', { class: 'past-row' },
        h('span', { class: 'past-date', testid: 'agent-past-chat-date', text: formatDay(past.createdAt, true) }),
        current ? h('span', { class: 'tag tag-current', text: 'This chat' }) : null,
        h('span', { class: `outcome outcome-${outcome.kind}`, testid: 'agent-past-chat-outcome', dataset: { outcome: outcome.kind }, text: outcome.label })),
      h('span', { class: 'past-row past-sub' },
        past.status === 'closed' ? ratingStars(past.rating, past.ratingComment) : null,
        h('span', { class: 'past-agent', testid: 'agent-past-chat-agent', text: past.agentName || 'No agent' }),
        h('span', { class: 'past-count', text: `${past.messageCount} msg` })),
      past.title || past.category ? h('span', { class: 'past-title', text: [past.title, past.category].filter(Boolean).join(' · ') }) : null,
      past.ratingComment ? h('span', { class: 'past-comment', testid: 'agent-past-chat-comment', text: `“${past.ratingComment}”` }) : null,
      past.notes ? h('span', { class: 'past-note', testid: 'agent-past-chat-note' }, closeNote(past.notes)) : null,
    ];
    list.append(h('li', { class: `past-chat${current ? ' is-current' : ''}`, testid: 'agent-past-chat', dataset: { sessionId: past.sessionId } },
      current
        ? h('div', { class: 'past-body' }, lines)
        : h('button', { type: 'button', class: 'past-body', testid: 'agent-past-chat-open', title: 'Read this chat', onclick: () => openTranscript(past, customer) }, lines)));
  }
  return h('div', { class: 'past' },
    h('h4', { class: 'past-heading' }, 'Chats ', h('span', { class: 'count', testid: 'agent-past-chat-count', text: String(sessions.length) })),
    list,
    earlier ? null : h('p', { class: 'details-note', testid: 'agent-no-past-chats', text: 'No earlier chats: this is the customer\'s first.' }));
}

// ------------------------------------------------------------------ a past chat, read only

const transcript = { past: null, oldest: null, token: 0 };

function openTranscript(past, customer) {
  transcript.past = past;
  transcript.oldest = null;
  transcript.token += 1;
  const outcome = outcomeOf(past);
  $('transcript-customer').textContent = customer.name || 'Visitor';
  $('transcript-title').textContent = `Chat of ${formatDay(past.createdAt, true)}`;
  $('transcript-summary').textContent = [outcome.label, past.agentName ? `with ${past.agentName}` : 'no agent', `${past.messageCount} messages`].join(' · ');
  const info = clear($('transcript-info'));
  info.append(
    h('div', { class: 'drawer-facts' },
      h('span', { class: `outcome outcome-${outcome.kind}`, testid: 'agent-transcript-outcome', dataset: { outcome: outcome.kind }, text: outcome.label }),
      ratingStars(past.rating, past.ratingComment)),
    past.ratingComment ? h('p', { class: 'past-comment', testid: 'agent-transcript-comment', text: `“${past.ratingComment}”` }) : null,
    past.notes ? h('p', { class: 'past-note', testid: 'agent-transcript-note' }, closeNote(past.notes)) : null);
  clear($('transcript-messages'));
  $('transcript-earlier').hidden = true;
  $('transcript-status').textContent = 'Loading the messages…';
  if (!$('transcript-dialog').open) $('transcript-dialog').showModal();
  loadTranscript(transcript.token);
}

async function loadTranscript(token) {
  const past = transcript.past;
  const query = new URLSearchParams({ limit: '100' });
  if (transcript.oldest) query.set('before', String(transcript.oldest));
  const button = $('transcript-earlier');
  button.disabled = true;
  const result = await api(`/api/sessions/${encodeURIComponent(past.sessionId)}/messages?${query}`, { token: auth.get()?.token });
  if (token !== transcript.token) return;
  button.disabled = false;
  const status = $('transcript-status');
  if (!result.ok) {
    status.textContent = result.status === 403
      ? 'This chat can be read while one of the customer\'s chats is open with you.'
      : `The messages could not be loaded: ${result.error.message || result.error.error}`;
    return;
  }
  const messages = [...(result.data?.messages || [])].sort((a, b) => a.seq - b.seq);
  const list = $('transcript-messages');
  const scroll = $('transcript-scroll');
  const first = !transcript.oldest;
  const height = scroll.scrollHeight;
  list.prepend(...messages.map((message) => {
    const li = messageElement(message, { receipt: false });
    li.dataset.seq = String(message.seq);
    li.dataset.messageId = message.messageId;
    return li;
  }));
  regroupList(list);
  if (messages.length) transcript.oldest = messages[0].seq;
  button.hidden = !result.data?.hasMore;
  status.textContent = list.children.length ? '' : 'No messages in this chat.';
  // The newest messages first in view; earlier pages keep the reader's place.
  requestAnimationFrame(() => { scroll.scrollTop = first ? scroll.scrollHeight : scroll.scrollHeight - height; });
}

$('transcript-earlier').addEventListener('click', () => loadTranscript(transcript.token));
$('transcript-close').append(icon('close', 18));
$('transcript-close').addEventListener('click', () => $('transcript-dialog').close());
// A click on the backdrop (the dialog element itself, outside its body) closes it.
$('transcript-dialog').addEventListener('click', (event) => {
  if (event.target === $('transcript-dialog')) $('transcript-dialog').close();
});
$('transcript-dialog').addEventListener('close', () => { transcript.token += 1; });

// ------------------------------------------------------------------ notifications

function notify(text, important) {
  const hidden = document.visibilityState !== 'visible';
  if (hidden && important) state.newWhileHidden += 1;
  if (state.sound) beep();
  updateTitle();
  // A toast only when the lists are out of sight (a phone showing one chat).
  const listsVisible = getComputedStyle(document.querySelector('.sidebar')).display !== 'none';
  if (important && !hidden && !listsVisible) toast(text);
}

function updateTitle() {
  let unread = state.newWhileHidden;
  for (const chat of state.chats.values()) unread += chat.unread;
  document.title = unread ? `(${unread}) ${TITLE}` : TITLE;
}

// ------------------------------------------------------------------ start

const saved = auth.get();
if (saved && saved.role === 'agent') startApp(saved);
else showLogin();
