// The chat page: streams /chat_stream as SSE deltas; the conversation lives on the server
// (session or SQL history), so a reload restores it from /get_prompt. No build step.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const log = $("log"), input = $("input"), form = $("form");
  const statusBox = $("status"), statusText = $("status-text");
  const sendBtn = $("send"), stopBtn = $("stop"), regenBtn = $("regenerate"), clearBtn = $("clear");
  const retryBtn = $("retry");
  const MESSAGE_ID_HEADER = "x-chatstream-last-generated-message-id";

  let streaming = false;
  let controller = null;
  let pending = null; // the last request refused as busy: {body, userBubble}

  // state: idle | streaming | busy | error | stopped
  function setStatus(state, text) {
    statusBox.dataset.state = state;
    statusText.textContent = text || "";
    retryBtn.hidden = state !== "busy";
  }

  function refreshButtons() {
    sendBtn.disabled = streaming;
    stopBtn.hidden = !streaming;
    clearBtn.disabled = streaming;
    regenBtn.disabled = streaming || !lastAssistant() || !!pending;
  }

  function lastAssistant() {
    const all = log.querySelectorAll(".msg.assistant");
    return all.length ? all[all.length - 1] : null;
  }

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    div.appendChild(body);
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function setText(div, text) {
    div.querySelector(".text").textContent = text;
    log.scrollTop = log.scrollHeight;
  }

  function addFeedback(div, messageId) {
    div.dataset.messageId = messageId;
    const bar = document.createElement("div");
    bar.className = "feedback";
    for (const [label, like, title] of [["Like", true, "Good reply"], ["Dislike", false, "Bad reply"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.title = title;
      button.className = like ? "like" : "dislike";
      button.setAttribute("aria-pressed", "false");
      button.onclick = async () => {
        const response = await fetch("set_feedback", {
          method: "POST",
          headers: {"Content-Type": "application/json"},
          body: JSON.stringify({message_id: messageId, is_like: like}),
        });
        if (!response.ok) { setStatus("error", "Could not save feedback (" + response.status + ")"); return; }
        bar.querySelectorAll("button").forEach((b) => { b.classList.remove("chosen"); b.setAttribute("aria-pressed", "false"); });
        button.classList.add("chosen");
        button.setAttribute("aria-pressed", "true");
        bar.dataset.feedback = like ? "like" : "dislike";
      };
      bar.appendChild(button);
    }
    div.appendChild(bar);
  }

  // Split an SSE buffer into complete "data:" payloads; returns [payloads, rest].
  function takeEvents(buffer) {
    const payloads = [];
    let index;
    while ((index = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, index);
      buffer = buffer.slice(index + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data) payloads.push(data);
    }
    return [payloads, buffer];
  }

  async function send(body, userBubble) {
    if (streaming) return;
    streaming = true;
    pending = null;
    controller = new AbortController();
    setStatus("streaming", "Generating…");
    refreshButtons();
    const out = bubble("assistant", "");
    out.classList.add("streaming");
    let text = "";
    try {
      const response = await fetch("chat_stream", {
        method: "POST",
        headers: {"Content-Type": "application/json", "Accept": "text/event-stream"},
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      const type = response.headers.get("content-type") || "";
      if (!type.includes("text/event-stream")) {
        // Refusals come as JSON: 429 (or 200 with the seed's default) {"error": "too_many_requests"}.
        const error = await response.json().catch(() => ({error: "http_" + response.status}));
        out.remove();
        if (error.error === "too_many_requests") {
          pending = {body, userBubble};
          if (userBubble) userBubble.classList.add("unsent");
          setStatus("busy", "The server is busy. Retry in a moment.");
        } else {
          if (userBubble && !body.regenerate) userBubble.classList.add("unsent");
          setStatus("error", "Error: " + (error.detail || error.error || response.status));
        }
        return;
      }
      if (userBubble) userBubble.classList.remove("unsent");
      let messageId = response.headers.get(MESSAGE_ID_HEADER);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", failed = null;
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        let payloads;
        [payloads, buffer] = takeEvents(buffer + decoder.decode(value, {stream: true}));
        for (const data of payloads) {
          if (data === "[DONE]") continue;
          const event = JSON.parse(data);
          text += event.delta || "";
          if (event.finished) {
            text = event.text ?? text;
            messageId = event.message_id || messageId;
            if (event.error) failed = event.error;
          }
          setText(out, text);
        }
      }
      out.classList.remove("streaming");
      if (messageId) addFeedback(out, messageId);
      if (failed) setStatus("error", "Generation failed: " + failed);
      else setStatus("idle", "");
    } catch (error) {
      out.classList.remove("streaming");
      if (error.name === "AbortError") {
        setStatus("stopped", "Stopped.");
        if (!text) out.remove();
      } else {
        setStatus("error", "Connection lost: " + error.message);
      }
    } finally {
      streaming = false;
      controller = null;
      refreshButtons();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || streaming) return;
    input.value = "";
    send({user_input: text}, bubble("user", text));
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stopBtn.onclick = () => { if (controller) controller.abort(); };
  retryBtn.onclick = () => {
    if (!pending) return;
    const {body, userBubble} = pending;
    send(body, userBubble);
  };
  regenBtn.onclick = () => {
    const last = lastAssistant();
    if (!last || streaming) return;
    last.remove();
    send({regenerate: true}, null);
  };
  clearBtn.onclick = async () => {
    const response = await fetch("clear_context", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: "{}",
    });
    if (!response.ok) { setStatus("error", "Could not clear (" + response.status + ")"); return; }
    log.innerHTML = "";
    pending = null;
    setStatus("idle", "");
    refreshButtons();
  };

  // Restore the conversation kept on the server (it survives a reload with persistent history).
  fetch("get_prompt")
    .then((response) => (response.ok ? response.json() : {messages: []}))
    .then((data) => {
      for (const message of data.messages || []) {
        if (message.role !== "user" && message.role !== "assistant") continue;
        const div = bubble(message.role, message.content || "");
        // The SQL history knows each reply's id: restored replies take feedback like fresh ones.
        if (message.role === "assistant" && message.id) addFeedback(div, message.id);
      }
    })
    .catch(() => {})
    .finally(() => {
      document.body.dataset.ready = "true";
      refreshButtons();
    });
  refreshButtons();
  input.focus();
})();
