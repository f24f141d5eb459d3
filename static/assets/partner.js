// The partner page: a member of a partner organisation (a restaurant, a
// merchant, a courier company) signs in, sees the chats their organisation
// was invited into, and follows and answers one: history, live messages,
// typing, read receipts and attachments. Speaks docs/PROTOCOL.md over
// /ws/partner.

import {
  Auth, Socket, api, attachmentList, avatar, clear, formatSize, formatTime, h, icon, newId, richText, showLoginForm, toast, wireLogin,
} from '/assets/common.js';

const auth = new Auth('switchboard:partner');
const TITLE = 'Partner · Switchboard';
const MAX_UPLOAD = 10 * 1024 * 1024;
const TYPING_EVERY_MS = 2500;
const $ = (id) => document.getElementById(id);

const STATUS = { bot: 'With the assistant', waiting: 'Waiting for an agent', assigned: 'With an agent', offline: 'Offline request', closed: 'Closed' };

const state = {
  login: null,
  me: null,
  chats: [],
  // The open chat: {id, session, seqs: Map(seq → li), maxSeq, readBy: {customer, agent}, markedRead, ended}
  active: null,
  typingSentAt: 0,
  typingHide: null,
  file: null,
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
  state.active = null;
  state.chats = [];
  clear($('chats'));
  $('pane').hidden = true;
  $('chat-empty').hidden = false;
  showLogin(notice);
}

wireLogin({
  form: $('login-form'),
  accept: (login) => (login.role === 'partner' ? null : 'This page is for partner accounts. Support agents use the agent desk at /agent.'),
  onSignedIn: (login) => {
    auth.set(login);
    startApp(login);
  },
});

async function startApp(login) {
  state.login = login;
  $('login').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = login.name;
  const me = await api('/api/partner/me', { token: auth.get()?.token });
  if (me.status === 401) {
    signOut('Your session has expired. Please sign in again.');
    return;
  }
  state.me = me.ok ? me.data : { name: login.name };
  $('me-name').textContent = state.me.name;
  socket = new Socket(
    () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/partner?token=${encodeURIComponent(auth.get()?.token || '')}`,
    { onFrame, onOpen, onState: connectionState },
  );
  socket.connect();
  loadChats();
}

function connectionState(kind, info = {}) {
  const box = $('connection');
  box.dataset.state = kind;
  box.querySelector('.label').textContent = kind === 'open' ? 'Connected' : kind === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  if (kind !== 'closed') return;
  if (!auth.get()) {
    signOut('Your session has expired. Please sign in again.');
    return;
  }
  // Refused before opening while the server is healthy: this sign-in is no longer accepted.
  if (info.failedOpens > 1) {
    api('/health').then((health) => {
      if (health.status === 200 && socket && !socket.open) signOut('The server no longer accepts this sign-in. Please sign in again.');
    });
  }
}

// After a (re)connection: the open chat is joined again from what this page has.
function onOpen() {
  loadChats();
  if (state.active && !state.active.ended) join(state.active.id, state.active.maxSeq);
}

// ------------------------------------------------------------------ the list

async function loadChats() {
  const result = await api('/api/partner/sessions', { token: auth.get()?.token });
  if (result.status === 401) {
    signOut('Your session has expired. Please sign in again.');
    return;
  }
  if (!result.ok) return;
  state.chats = result.data || [];
  renderChats();
}

function renderChats() {
  const list = clear($('chats'));
  $('chats-count').textContent = String(state.chats.length);
  $('chats-empty').hidden = state.chats.length > 0;
  for (const chat of state.chats) {
    const name = chat.customerName || 'Customer';
    list.append(h('li', {
      class: `chat-tab${state.active?.id === chat.sessionId ? ' is-active' : ''}${chat.status === 'closed' ? ' is-closed' : ''}`,
      testid: 'partner-chat-tab', dataset: { sessionId: chat.sessionId }, role: 'button', tabindex: '0',
      onclick: () => open(chat.sessionId),
      onkeydown: (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); open(chat.sessionId); } },
    }, avatar(name), h('div', { class: 'tab-main' },
      h('div', { class: 'tab-row' }, h('span', { class: 'tab-name', text: name }), h('span', { class: 'tab-time', text: formatTime(chat.invitedAt) })),
      h('div', { class: 'tab-row' }, h('span', { class: 'tab-preview', text: chat.title || STATUS[chat.status] || chat.status })))));
  }
}

// ------------------------------------------------------------------ one chat

function open(sessionId) {
  if (state.active?.id === sessionId && !state.active.ended) {
    $('workspace').dataset.view = 'chat';
    return;
  }
  state.active = { id: sessionId, session: null, seqs: new Map(), maxSeq: 0, readBy: { customer: 0, agent: 0 }, markedRead: 0, ended: null };
  clear($('messages'));
  clearFile();
  $('input').value = '';
  $('typing').hidden = true;
  $('pane').hidden = false;
  $('chat-empty').hidden = true;
  $('workspace').dataset.view = 'chat';
  renderHeader();
  renderChats();
  join(sessionId, 0);
}

async function join(sessionId, afterSeq) {
  try {
    const reply = await socket.request('partner:join_chat', { sessionId, afterSeq });
    const chat = state.active;
    if (!chat || chat.id !== sessionId) return;
    chat.session = reply.data.session;
    for (const message of reply.data.messages || []) addMessage(message, false);
    renderHeader();
    markRead();
  } catch (error) {
    if (state.active?.id !== sessionId) return;
    if (error.code === 'forbidden') end('Your organisation is no longer in this chat.');
    else if (error.code !== 'disconnected') toast(error.message || 'The chat could not be opened.', 'error');
  }
}

function renderHeader() {
  const chat = state.active;
  if (!chat) return;
  const listed = state.chats.find((c) => c.sessionId === chat.id);
  const name = chat.session?.customerName || listed?.customerName || 'Customer';
  $('pane-title').textContent = name;
  clear($('pane-avatar')).append(avatar(name, 'avatar-lg'));
  const status = chat.session?.status || listed?.status;
  const parts = [STATUS[status] || status || ''];
  if (chat.session?.agentName) parts.push(`Agent: ${chat.session.agentName}`);
  if (chat.session?.title) parts.push(chat.session.title);
  $('pane-sub').textContent = parts.filter(Boolean).join(' · ');
  const closed = status === 'closed';
  if (closed && !chat.ended) chat.ended = 'This chat has ended.';
  $('ended').hidden = !chat.ended;
  $('ended-text').textContent = chat.ended || '';
  const live = !chat.ended;
  $('composer').hidden = !live;
  for (const id of ['input', 'send', 'attach']) $(id).disabled = !live;
}

/** The chat is over for this page: closed, or the organisation was removed. */
function end(text) {
  const chat = state.active;
  if (!chat) return;
  chat.ended = text;
  $('typing').hidden = true;
  renderHeader();
}

function senderLabel(message) {
  if (message.sender === 'customer') return message.senderName || 'Customer';
  if (message.sender === 'bot') return message.senderName || 'Assistant';
  if (message.sender === 'agent') return message.senderName || 'Support';
  if (message.sender === 'partner') return message.senderName || 'Partner';
  return '';
}

const TAGS = { agent: 'Support', bot: 'Bot', partner: 'Partner' };

function messageElement(message) {
  const system = message.sender === 'system' || message.messageType === 'system';
  const sender = system ? 'system' : message.sender;
  const mine = sender === 'partner' && message.senderName === state.me?.name;
  const li = h('li', { class: `msg from-${sender}${mine ? ' mine' : ''}`, testid: 'partner-message', dataset: { sender } });
  if (system) {
    li.append(h('span', { class: 'system-text', testid: 'partner-message-text', text: message.content || '' }),
      h('time', { class: 'system-time', datetime: message.createdAt || '', text: formatTime(message.createdAt) }));
    return li;
  }
  const bubble = h('div', { class: 'bubble', testid: 'partner-message-text' });
  bubble.append(richText(message.content || ''));
  const tag = TAGS[sender] ? h('span', { class: `tag tag-${sender === 'partner' ? 'partner' : 'bot'}`, text: TAGS[sender] }) : null;
  const meta = h('div', { class: 'msg-meta' },
    h('span', { class: 'msg-name', testid: 'partner-message-sender', text: senderLabel(message) }), tag,
    h('time', { class: 'msg-time', datetime: message.createdAt || '', text: formatTime(message.createdAt) }));
  const main = h('div', { class: 'msg-main' }, meta, bubble, attachmentList(message.attachments, auth.get()?.token, 'partner-attachment'));
  if (mine) main.append(h('div', { class: 'receipt', testid: 'partner-receipt' }));
  else li.append(sender === 'bot' ? h('span', { class: 'avatar avatar-bot', 'aria-hidden': 'true' }, icon('bot', 15)) : avatar(message.senderName || senderLabel(message)));
  li.append(main);
  return li;
}

function addMessage(message, live) {
  const chat = state.active;
  if (!chat || message.sessionId !== chat.id || typeof message.seq !== 'number' || chat.seqs.has(message.seq)) return;
  const li = messageElement(message);
  li.dataset.seq = String(message.seq);
  chat.seqs.set(message.seq, li);
  const list = $('messages');
  const after = [...list.children].find((other) => Number(other.dataset.seq) > message.seq);
  list.insertBefore(li, after || null);
  chat.maxSeq = Math.max(chat.maxSeq, message.seq);
  if (li.classList.contains('mine')) setReceipt(li);
  if (message.sender !== 'system' && !li.classList.contains('mine')) $('typing').hidden = true;
  const scroll = $('scroll');
  if (live) scroll.scrollTop = scroll.scrollHeight;
  else requestAnimationFrame(() => { scroll.scrollTop = scroll.scrollHeight; });
  if (live) markRead();
}

function setReceipt(li) {
  const chat = state.active;
  const box = li.querySelector('.receipt');
  if (!chat || !box) return;
  const seq = Number(li.dataset.seq);
  const read = seq <= Math.max(chat.readBy.customer, chat.readBy.agent);
  clear(box).append(icon(read ? 'checks' : 'check', 14), h('span', { text: read ? 'Read' : 'Sent' }));
  li.dataset.status = read ? 'read' : 'sent';
}

function markRead() {
  const chat = state.active;
  if (!chat || chat.ended || document.visibilityState !== 'visible' || chat.maxSeq <= chat.markedRead) return;
  chat.markedRead = chat.maxSeq;
  socket?.request('partner:mark_read', { sessionId: chat.id, upToSeq: chat.maxSeq }).catch(() => { chat.markedRead = 0; });
}

document.addEventListener('visibilitychange', markRead);

// ------------------------------------------------------------------ writing

function typing() {
  const chat = state.active;
  if (!chat || chat.ended || !$('input').value.trim()) return;
  const now = Date.now();
  if (now - state.typingSentAt < TYPING_EVERY_MS) return;
  state.typingSentAt = now;
  socket?.request('partner:typing', { sessionId: chat.id }).catch(() => {});
}

async function send() {
  const chat = state.active;
  const input = $('input');
  const content = input.value.trim();
  if (!chat || chat.ended || (!content && !state.file)) return;
  $('send').disabled = true;
  let attachments = [];
  let shown = [];
  if (state.file) {
    const uploaded = await upload(chat.id, state.file);
    if (!uploaded) {
      $('send').disabled = false;
      return;
    }
    attachments = [uploaded.attachmentId];
    shown = [uploaded];
    clearFile();
  }
  const text = content || shown[0]?.fileName || 'file';
  input.value = '';
  state.typingSentAt = 0;
  try {
    const reply = await socket.request('partner:send_message', { sessionId: chat.id, content: text, clientMsgId: newId('p-'), attachments });
    addMessage({
      sessionId: chat.id, messageId: reply.data.messageId, seq: reply.data.seq, sender: 'partner', senderName: state.me?.name,
      content: text, messageType: 'text', createdAt: reply.data.createdAt, attachments: shown,
    }, true);
  } catch (error) {
    input.value = content;
    if (error.code === 'forbidden') end('Your organisation is no longer in this chat.');
    else if (error.code === 'session_closed') end('This chat has ended.');
    else toast(error.message || 'The message was not sent.', 'error');
  } finally {
    $('send').disabled = Boolean(state.active?.ended);
  }
}

async function upload(sessionId, file) {
  const form = new FormData();
  form.append('sessionId', sessionId);
  form.append('file', file, file.name);
  let response = null;
  try {
    response = await fetch('/api/uploads', { method: 'POST', headers: { Authorization: `Bearer ${auth.get()?.token}` }, body: form });
  } catch { /* network */ }
  if (response && response.ok) return response.json();
  const message = response ? (await response.json().catch(() => ({}))).message || `HTTP ${response.status}` : 'network error';
  toast(`The file could not be uploaded: ${message}`, 'error');
  return null;
}

function pickFile(file) {
  if (file.size > MAX_UPLOAD) {
    toast('Files are limited to 10 MB.', 'error');
    return;
  }
  state.file = file;
  const preview = clear($('file-preview'));
  preview.append(icon('file', 16), h('span', { class: 'file-name', text: file.name }), h('span', { class: 'file-size', text: formatSize(file.size) }),
    h('button', { class: 'icon-btn icon-btn-sm', type: 'button', 'aria-label': 'Remove the file', onclick: clearFile }, icon('close', 14)));
  preview.hidden = false;
}

function clearFile() {
  state.file = null;
  clear($('file-preview')).hidden = true;
}

$('input').addEventListener('input', typing);
$('input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
$('send').addEventListener('click', send);
$('attach').append(icon('clip', 16), h('span', { text: 'Attach' }));
$('attach').addEventListener('click', () => $('file').click());
$('file').addEventListener('change', () => {
  if ($('file').files[0]) pickFile($('file').files[0]);
  $('file').value = '';
});
$('back').append(icon('back', 20));
$('back').addEventListener('click', () => { $('workspace').dataset.view = 'list'; });
$('sign-out').append(icon('logout', 18));
$('sign-out').addEventListener('click', () => signOut('You have signed out.'));

// ------------------------------------------------------------------ events

function onFrame({ event, data = {} }) {
  const chat = state.active;
  const here = chat && data.sessionId === chat.id;
  switch (event) {
    case 'message:received':
      if (here) addMessage(data, true);
      break;
    case 'user_typing':
    case 'typing_stopped':
      if (here && data.name !== state.me?.name) {
        clearTimeout(state.typingHide);
        $('typing-text').textContent = `${data.name || 'Someone'} is typing…`;
        $('typing').hidden = event !== 'user_typing' || Boolean(chat.ended);
        if (event === 'user_typing') state.typingHide = setTimeout(() => { $('typing').hidden = true; }, 12000);
      }
      break;
    case 'messages_read':
      if (here && (data.role === 'customer' || data.role === 'agent')) {
        chat.readBy[data.role] = Math.max(chat.readBy[data.role], data.upToSeq);
        for (const li of chat.seqs.values()) if (li.classList.contains('mine')) setReceipt(li);
      }
      break;
    case 'status:changed':
      if (here && chat.session) {
        chat.session.status = data.status;
        if (data.agentName !== undefined) chat.session.agentName = data.agentName;
        renderHeader();
      }
      break;
    case 'session:closed':
      if (here) {
        if (chat.session) chat.session.status = 'closed';
        end('This chat has ended.');
      }
      loadChats();
      break;
    case 'partner:invited':
      toast('Your organisation was invited into a new chat.');
      loadChats();
      break;
    case 'partner:removed':
      if (chat && data.sessionId === chat.id) end('Your organisation was removed from this chat.');
      loadChats();
      break;
    case 'error':
      toast(data.message || data.code || 'Something went wrong.', 'error');
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ start

const saved = auth.get();
if (saved && saved.role === 'partner') startApp(saved);
else showLogin();
