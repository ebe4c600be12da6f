// The chat page: streams /chat_stream (SSE deltas), keeps the conversation in the server session.
(function () {
  const log = document.getElementById("log");
  const input = document.getElementById("input");
  const status = document.getElementById("status");
  const form = document.getElementById("form");
  let busy = false;

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function addFeedback(div, messageId) {
    const bar = document.createElement("div");
    bar.className = "feedback";
    for (const [label, like] of [["👍", true], ["👎", false]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.className = like ? "like" : "dislike";
      b.onclick = async () => {
        const r = await fetch("set_feedback", {method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify({message_id: messageId, is_like: like})});
        if (r.ok) { bar.querySelectorAll("button").forEach(x => x.classList.remove("chosen")); b.classList.add("chosen"); }
      };
      bar.appendChild(b);
    }
    div.appendChild(bar);
  }

  async function send(body, userText) {
    if (busy) return;
    busy = true;
    status.textContent = "";
    if (userText !== null) bubble("user", userText);
    const out = bubble("assistant", "…");
    try {
      const resp = await fetch("chat_stream", {method: "POST",
        headers: {"Content-Type": "application/json", "Accept": "text/event-stream"}, body: JSON.stringify(body)});
      const type = resp.headers.get("content-type") || "";
      if (!type.includes("text/event-stream")) {
        const err = await resp.json().catch(() => ({error: "http_" + resp.status}));
        out.remove();
        status.textContent = err.error === "too_many_requests" ? "Server busy, please retry in a moment." : ("Error: " + (err.detail || err.error));
        status.dataset.state = err.error || "error";
        return;
      }
      const messageId = resp.headers.get("x-chatstream-last-generated-message-id");
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", text = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let idx;
        while ((idx = buffer.indexOf("\n\n")) >= 0) {
          const line = buffer.slice(0, idx).trim();
          buffer = buffer.slice(idx + 2);
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const event = JSON.parse(data);
          text += event.delta || "";
          out.textContent = text;
          log.scrollTop = log.scrollHeight;
        }
      }
      if (messageId) addFeedback(out, messageId);
    } catch (e) {
      status.textContent = "Connection lost: " + e;
    } finally {
      busy = false;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({user_input: text}, text);
  });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
  document.getElementById("regenerate").onclick = () => {
    const last = log.querySelector(".assistant:last-of-type");
    if (last) last.remove();
    send({regenerate: true}, null);
  };
  document.getElementById("clear").onclick = async () => {
    await fetch("clear_context", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
    log.innerHTML = "";
  };
  // Restore the conversation kept on the server (persistent history survives a reload).
  fetch("get_prompt").then(r => r.json()).then(data => {
    for (const m of data.messages || []) if (m.role !== "system") bubble(m.role, m.content);
  }).catch(() => {});
})();
