// The transcript: message bubbles in #log (a role="log" aria-live region). A reply that is still
// streaming carries aria-busy="true", so screen readers read it once it is complete instead of
// after every token; Markdown is re-rendered at most once per animation frame while it streams.
import {renderMarkdown} from "./markdown.js";

const STATUS_NOTES = {
  interrupted: "Interrupted: this reply was cut off before it finished.",
  failed: "Failed: the model stopped with an error.",
  generating: "Still being generated elsewhere; reopen the conversation to see the rest.",
  stopped: "Stopped.",
};

export class Transcript {
  /** ``onFeedback(messageId, isLike)`` resolves to true when the server stored it. */
  constructor(log, options, onFeedback) {
    this.log = log;
    this.options = options;
    this.onFeedback = onFeedback;
    this.welcome = log.querySelector("#welcome");
  }

  clear() {
    for (const node of [...this.log.children]) if (node !== this.welcome) node.remove();
    this.refreshWelcome();
  }

  refreshWelcome() {
    const text = this.options.welcomeMessage;
    this.welcome.hidden = !text || this.log.querySelector(".msg") !== null;
    this.welcome.querySelector(".text").textContent = text;
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  bubble(role) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    const show = role === "user" ? this.options.show_human_icon : this.options.show_ai_icon;
    if (show) {
      div.classList.add("with-icon");
      div.appendChild(avatar(role === "user" ? "human" : "ai", this.options));
    }
    const body = document.createElement("div");
    body.className = "text";
    div.appendChild(body);
    this.log.appendChild(div);
    this.refreshWelcome();
    this.scrollToEnd();
    return div;
  }

  /** A user message: always plain text, whatever it contains. */
  addUser(text) {
    const div = this.bubble("user");
    div.querySelector(".text").textContent = text;
    return div;
  }

  /** A stored reply, with its status mark and any feedback already given. */
  addAssistant(message) {
    const div = this.bubble("assistant");
    renderMarkdown(div.querySelector(".text"), message.content || "");
    if (message.status && message.status !== "complete") this.mark(div, message.status);
    if (message.id && message.status !== "generating") {
      const given = message.feedback ? (message.feedback.is_like ? "like" : "dislike") : null;
      this.addFeedback(div, message.id, given);
    }
    this.scrollToEnd();
    return div;
  }

  /** A reply about to stream: returns the handle the stream writes through. */
  startReply() {
    const div = this.bubble("assistant");
    div.classList.add("streaming");
    div.setAttribute("aria-busy", "true");
    return new StreamingReply(this, div);
  }

  mark(div, status) {
    div.dataset.status = status;
    div.classList.add("status-" + status);
    let note = div.querySelector(".status-note");
    if (!note) {
      note = document.createElement("p");
      note.className = "status-note";
      div.querySelector(".text").after(note);
    }
    note.textContent = STATUS_NOTES[status] || status;
  }

  lastAssistant() {
    const all = this.log.querySelectorAll(".msg.assistant");
    return all.length ? all[all.length - 1] : null;
  }

  addFeedback(div, messageId, given = null) {
    div.dataset.messageId = messageId;
    const bar = document.createElement("div");
    bar.className = "feedback";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Feedback on this reply");
    for (const [label, like, title] of [["Like", true, "Good reply"], ["Dislike", false, "Bad reply"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.title = title;
      button.className = like ? "like" : "dislike";
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", async () => {
        if (!(await this.onFeedback(messageId, like))) return;
        choose(bar, button, like);
      });
      bar.appendChild(button);
      if (given === (like ? "like" : "dislike")) choose(bar, button, like);
    }
    div.appendChild(bar);
  }
}

function choose(bar, button, like) {
  bar.querySelectorAll("button").forEach((b) => {
    b.classList.remove("chosen");
    b.setAttribute("aria-pressed", "false");
  });
  button.classList.add("chosen");
  button.setAttribute("aria-pressed", "true");
  bar.dataset.feedback = like ? "like" : "dislike";
}

function avatar(kind, options) {
  const url = kind === "ai" ? options.aiIconUrl : options.humanIconUrl;
  const letters = kind === "ai" ? "AI" : "You";
  const box = document.createElement("span");
  box.className = "avatar " + kind;
  box.setAttribute("aria-hidden", "true");
  box.textContent = letters;
  if (url) {
    const img = document.createElement("img");
    img.alt = "";
    img.src = url;
    img.addEventListener("load", () => box.replaceChildren(img));
    img.addEventListener("error", () => img.remove());
  }
  return box;
}

/** Renders a growing reply; the last text is always rendered by ``finish``. */
class StreamingReply {
  constructor(transcript, div) {
    this.transcript = transcript;
    this.div = div;
    this.body = div.querySelector(".text");
    this.text = "";
    this.frame = 0;
  }

  update(text) {
    this.text = text;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    renderMarkdown(this.body, this.text);
    this.transcript.scrollToEnd();
  }

  /** Done: final render, status mark (stopped / failed), feedback buttons when it has an id. */
  finish({messageId = null, status = null} = {}) {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.render();
    this.div.classList.remove("streaming");
    this.div.setAttribute("aria-busy", "false");
    if (status) this.transcript.mark(this.div, status);
    if (messageId) this.transcript.addFeedback(this.div, messageId);
  }

  remove() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.div.remove();
    this.transcript.refreshWelcome();
  }
}
