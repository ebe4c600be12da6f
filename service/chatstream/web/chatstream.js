// The chat page. With a conversation store on the server (/v1/conversations answers) it lists
// the caller's conversations beside the transcript; without one (in-memory session history) it
// shows the session's conversation, restored from /get_prompt. No build step: ES modules.
import {ConversationList, confirmDelete, conversationsApi} from "./conversations.js";
import {applyOptions, readOptions} from "./options.js";
import {streamTurn} from "./stream.js";
import {Transcript} from "./transcript.js";

const REMEMBERED = "chatstream.conversation";
const $ = (id) => document.getElementById(id);
const options = readOptions();
const ui = {
  log: $("log"), input: $("input"), form: $("form"), status: $("status"), statusText: $("status-text"),
  send: $("send"), stop: $("stop"), regenerate: $("regenerate"), clear: $("clear"), retry: $("retry"),
  nav: $("conversations"), list: $("conversation-list"), newChat: $("new-chat"), more: $("load-more"),
  toggle: $("toggle-conversations"), debug: $("debug"), debugLog: $("debug-log"), confirm: $("confirm"),
};
const state = {
  store: false, // true when the server keeps conversations (/v1/conversations)
  currentId: null, // the conversation shown (store mode); null = a new chat not created yet
  busy: false, // a turn is being sent or streamed
  controller: null,
  active: null, // the promise of the running turn
  pending: null, // the last turn refused as busy: {body, userBubble}
  view: 0, // bumped on every switch: a load that finishes after a newer switch is dropped
  nextBefore: null,
};
const transcript = new Transcript(ui.log, options, sendFeedback);
const conversations = new ConversationList(ui.list, {open: openConversation, rename, remove: removeConversation});

// --- status and buttons ---------------------------------------------------------------------
// state: idle | loading | streaming | busy | error | stopped
function setStatus(name, text) {
  ui.status.dataset.state = name;
  ui.statusText.textContent = text || "";
  ui.retry.hidden = name !== "busy";
}

function refreshButtons() {
  ui.send.disabled = state.busy;
  ui.stop.hidden = !state.busy;
  ui.clear.disabled = state.busy;
  ui.regenerate.hidden = !options.regenerate_enabled;
  ui.regenerate.disabled = state.busy || !transcript.lastAssistant() || !!state.pending;
}

function debug(info) {
  if (!ui.debug.hidden) ui.debugLog.textContent = JSON.stringify(info, null, 2);
}

// --- one turn ---------------------------------------------------------------------------------
function withConversation(body, id = state.currentId) {
  return state.store && id ? {...body, conversation_id: id} : body;
}

async function ensureConversation() {
  if (!state.store || state.currentId) return;
  const created = await conversationsApi.create();
  state.currentId = created.id;
  conversations.put(created, true);
  conversations.setCurrent(created.id);
  remember(created.id);
}

function send(body, userBubble) {
  if (state.busy) return Promise.resolve();
  state.busy = true;
  state.pending = null;
  state.active = runTurn(body, userBubble).finally(() => {
    state.busy = false;
    state.controller = null;
    state.active = null;
    refreshButtons();
  });
  return state.active;
}

async function runTurn(body, userBubble) {
  const controller = (state.controller = new AbortController());
  setStatus("streaming", "Generating…");
  refreshButtons();
  let reply = null;
  let conversationId = null;
  const started = performance.now();
  try {
    await ensureConversation();
    if (controller.signal.aborted) return;
    conversationId = state.currentId;
    reply = transcript.startReply();
    const turnBody = withConversation(body, conversationId);
    const result = await streamTurn(turnBody, controller.signal, {
      onOpen: () => userBubble && userBubble.classList.remove("unsent"),
      onText: (text) => reply.update(text),
    });
    if (result.refused) {
      reply.remove();
      refused(result.refused, body, userBubble);
      return;
    }
    reply.finish({messageId: result.messageId, status: result.failed ? "failed" : null});
    debug({conversation_id: conversationId, message_id: result.messageId, finish_reason: result.finishReason,
      usage: result.usage, events: result.events, seconds: Math.round(performance.now() - started) / 1000});
    if (result.failed) setStatus("error", "Generation failed: " + result.failed);
    else setStatus("idle", "");
    if (state.store) refreshSummary(conversationId);
  } catch (error) {
    if (controller.signal.aborted) {
      // Stop, or a switch to another conversation: the server cancels the generation.
      if (reply && reply.text) reply.finish({status: "stopped"});
      else if (reply) reply.remove();
      if (controller.signal.reason !== "switch") setStatus("stopped", "Stopped.");
      if (state.store && conversationId) refreshSummary(conversationId);
    } else {
      if (reply && reply.text) reply.finish({status: "interrupted"});
      else if (reply) reply.remove();
      if (!reply && userBubble) userBubble.classList.add("unsent");
      setStatus("error", (reply ? "Connection lost: " : "Error: ") + error.message);
    }
  }
}

function refused(error, body, userBubble) {
  if (error.error === "too_many_requests") {
    state.pending = {body, userBubble};
    if (userBubble) userBubble.classList.add("unsent");
    setStatus("busy", "The server is busy. Retry in a moment.");
    return;
  }
  if (userBubble && !body.regenerate) userBubble.classList.add("unsent");
  setStatus("error", "Error: " + (error.detail || error.error));
}

/** Stop the running turn (if any) and wait until it has let go of the transcript. */
async function stopTurn(reason) {
  if (state.controller) state.controller.abort(reason);
  if (state.active) await state.active;
}

async function refreshSummary(id) {
  try {
    const conversation = await conversationsApi.get(id);
    conversations.put(conversation, true);
  } catch {
    // the list keeps its old title; the next reload shows the stored one
  }
}

async function sendFeedback(messageId, isLike) {
  const response = await fetch("set_feedback", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(withConversation({message_id: messageId, is_like: isLike})),
  });
  if (!response.ok) setStatus("error", "Could not save feedback (" + response.status + ")");
  return response.ok;
}

// --- conversations ----------------------------------------------------------------------------
function remember(id) {
  try {
    if (id) localStorage.setItem(REMEMBERED, id);
    else localStorage.removeItem(REMEMBERED);
  } catch {
    // storage disabled: the newest conversation opens after a reload instead
  }
}

function remembered() {
  try {
    return localStorage.getItem(REMEMBERED);
  } catch {
    return null;
  }
}

async function openConversation(id) {
  const ticket = ++state.view;
  const fromSidebar = closeSidebarOnPhone();
  await stopTurn("switch");
  if (ticket !== state.view) return false;
  state.currentId = id;
  state.pending = null;
  conversations.setCurrent(id);
  remember(id);
  transcript.clear();
  setStatus("loading", "Loading…");
  refreshButtons();
  let conversation;
  try {
    conversation = await conversationsApi.get(id);
  } catch (error) {
    if (ticket === state.view) setStatus("error", "Could not open the conversation: " + error.message);
    return false;
  }
  if (ticket !== state.view) return false;
  for (const message of conversation.messages || []) {
    if (message.role === "user") transcript.addUser(message.content || "");
    else if (message.role === "assistant") transcript.addAssistant(message);
  }
  conversations.put(conversation);
  setStatus("idle", "");
  refreshButtons();
  if (fromSidebar) ui.input.focus();
  return true;
}

async function newChat() {
  ++state.view;
  closeSidebarOnPhone();
  await stopTurn("switch");
  state.currentId = null;
  state.pending = null;
  conversations.setCurrent(null);
  remember(null);
  transcript.clear();
  setStatus("idle", "");
  refreshButtons();
  ui.input.focus();
}

async function rename(id, title) {
  try {
    conversations.put(await conversationsApi.rename(id, title));
    return true;
  } catch (error) {
    setStatus("error", "Could not rename: " + error.message);
    return false;
  }
}

async function removeConversation(id, title) {
  if (!(await confirmDelete(title))) {
    conversations.focus(id);
    return;
  }
  const ids = conversations.ids();
  const neighbour = ids[ids.indexOf(id) + 1] || ids[ids.indexOf(id) - 1] || null;
  if (id === state.currentId) await stopTurn("switch");
  try {
    await conversationsApi.remove(id);
  } catch (error) {
    setStatus("error", "Could not delete: " + error.message);
    return;
  }
  conversations.remove(id);
  if (id === state.currentId) {
    if (neighbour) await openConversation(neighbour);
    else await newChat();
  }
  if (!conversations.focus(neighbour)) ui.newChat.focus();
}

async function loadPage() {
  const page = await conversationsApi.list(options.pageSize, state.nextBefore);
  if (!page) return null;
  for (const conversation of page.items) conversations.put(conversation);
  state.nextBefore = page.hasMore ? page.nextBefore : null;
  ui.more.hidden = !page.hasMore;
  return page;
}

/** Close the phone-width overlay list; true when it was open. */
function closeSidebarOnPhone() {
  const open = document.body.classList.contains("sidebar-open");
  if (open) toggleSidebar(false);
  return open;
}

function toggleSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  ui.toggle.setAttribute("aria-expanded", String(open));
  if (open) conversations.focus(state.currentId) || ui.newChat.focus();
}

// --- wiring -----------------------------------------------------------------------------------
function wire() {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.input.value.trim();
    if (!text || state.busy) return;
    ui.input.value = "";
    send({user_input: text}, transcript.addUser(text));
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.form.requestSubmit();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.busy && !ui.confirm.open) {
      event.preventDefault();
      stopTurn("user");
    }
  });
  ui.stop.addEventListener("click", () => stopTurn("user"));
  ui.retry.addEventListener("click", () => {
    if (state.pending) send(state.pending.body, state.pending.userBubble);
  });
  ui.regenerate.addEventListener("click", () => {
    const last = transcript.lastAssistant();
    if (!last || state.busy) return;
    last.remove();
    send({regenerate: true}, null);
  });
  ui.clear.addEventListener("click", clearConversation);
  ui.newChat.addEventListener("click", newChat);
  ui.more.addEventListener("click", () => loadPage().catch((e) => setStatus("error", "Could not load: " + e.message)));
  ui.toggle.addEventListener("click", () => toggleSidebar(!document.body.classList.contains("sidebar-open")));
  // a tap beside the open list (phone width) closes it
  $("chat").addEventListener("click", (event) => {
    if (closeSidebarOnPhone()) event.preventDefault();
  }, true);
}

async function clearConversation() {
  if (state.store && !state.currentId) return;
  const response = await fetch("clear_context", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(withConversation({})),
  });
  if (!response.ok) {
    setStatus("error", "Could not clear (" + response.status + ")");
    return;
  }
  transcript.clear();
  state.pending = null;
  setStatus("idle", "");
  refreshButtons();
  if (state.store) refreshSummary(state.currentId);
}

/** Session history (no store): the session's one conversation, as /get_prompt returns it. */
async function restoreSession() {
  if (options.clearContextOnReload) {
    await fetch("clear_context", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
    return;
  }
  const response = await fetch("get_prompt");
  const data = response.ok ? await response.json() : {messages: []};
  for (const message of data.messages || []) {
    if (message.role === "user") transcript.addUser(message.content || "");
    else if (message.role === "assistant") transcript.addAssistant({content: message.content, id: message.id});
  }
}

async function boot() {
  applyOptions(options, ui);
  transcript.refreshWelcome();
  wire();
  refreshButtons();
  ui.input.focus();
  try {
    const first = await loadPage();
    state.store = first !== null;
    if (!state.store) {
      await restoreSession();
      return;
    }
    ui.nav.hidden = false;
    document.body.classList.add("has-conversations");
    const wanted = remembered();
    if (options.clearContextOnReload) await newChat();
    else if (!(wanted && (await openConversation(wanted)))) {
      if (first.items.length) await openConversation(first.items[0].id);
      else await newChat();
    }
  } catch (error) {
    setStatus("error", "Could not load the conversations: " + error.message);
  } finally {
    refreshButtons();
    document.body.dataset.ready = "true";
  }
}

boot();
