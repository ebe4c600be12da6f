// The conversation list beside the transcript, over the same /v1/conversations API that API
// clients use. Keyboard: arrows/Home/End move between conversations, Enter opens, F2 renames,
// Delete deletes (after a confirmation).

const BASE = "v1/conversations";

async function call(method, path, body) {
  const init = {method, headers: {"Accept": "application/json"}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail || data.error || "HTTP " + response.status);
    error.status = response.status;
    throw error;
  }
  return data;
}

export const conversationsApi = {
  /** One page, newest first: {items, hasMore, nextBefore}; null when the server keeps no store. */
  async list(limit, before = null) {
    const query = new URLSearchParams({limit: String(limit)});
    if (before) query.set("before", before);
    let data;
    try {
      data = await call("GET", BASE + "?" + query);
    } catch (error) {
      if (before === null && error.status) return null; // no /v1/conversations here (session history)
      throw error;
    }
    if (!Array.isArray(data.data)) return null;
    const items = data.data;
    const last = items[items.length - 1];
    // Servers that page with has_more/next_before say so; older ones are paged by updated_at.
    const hasMore = typeof data.has_more === "boolean" ? data.has_more : items.length === limit;
    const nextBefore = "next_before" in data ? data.next_before : last ? last.updated_at : null;
    return {items, hasMore: hasMore && !!nextBefore, nextBefore};
  },
  create: () => call("POST", BASE, {}),
  get: (id) => call("GET", BASE + "/" + encodeURIComponent(id)),
  rename: (id, title) => call("PATCH", BASE + "/" + encodeURIComponent(id), {title}),
  remove: (id) => call("DELETE", BASE + "/" + encodeURIComponent(id)),
};

export function displayTitle(conversation) {
  return (conversation.title || "").trim() || "New chat";
}

/** The list element; ``handlers``: open(id), rename(id, title) → Promise<bool>, remove(id). */
export class ConversationList {
  constructor(list, handlers) {
    this.list = list;
    this.handlers = handlers;
    this.current = null;
    list.addEventListener("keydown", (event) => this.onKey(event));
  }

  ids() {
    return [...this.list.querySelectorAll("li.conversation")].map((li) => li.dataset.id);
  }

  item(id) {
    return [...this.list.children].find((li) => li.dataset.id === id) || null;
  }

  /** Add at the end (paging) or the top (new, or just updated); an existing item is refreshed. */
  put(conversation, atTop = false) {
    let li = this.item(conversation.id);
    if (!li) li = this.build(conversation.id);
    this.setTitle(li, displayTitle(conversation));
    li.dataset.updatedAt = conversation.updated_at || "";
    if (atTop) this.list.prepend(li);
    else if (!li.parentNode) this.list.appendChild(li);
    this.markCurrent();
  }

  remove(id) {
    const li = this.item(id);
    if (li) li.remove();
  }

  setCurrent(id) {
    this.current = id;
    this.markCurrent();
  }

  markCurrent() {
    for (const li of this.list.children) {
      const on = li.dataset.id === this.current;
      li.classList.toggle("current", on);
      const open = li.querySelector(".open");
      if (on) open.setAttribute("aria-current", "true");
      else open.removeAttribute("aria-current");
    }
  }

  focus(id) {
    const li = id ? this.item(id) : this.list.querySelector("li.conversation");
    if (li) li.querySelector(".open").focus();
    return !!li;
  }

  build(id) {
    const li = document.createElement("li");
    li.className = "conversation";
    li.dataset.id = id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.addEventListener("click", () => this.handlers.open(id));
    const rename = iconButton("rename", "✎");
    rename.addEventListener("click", () => this.startRename(li));
    const remove = iconButton("delete", "✕");
    remove.addEventListener("click", () => this.handlers.remove(id, li.dataset.title));
    li.append(open, rename, remove);
    return li;
  }

  setTitle(li, title) {
    li.dataset.title = title;
    li.querySelector(".open").textContent = title;
    li.querySelector(".open").title = title;
    li.querySelector(".rename").setAttribute("aria-label", "Rename “" + title + "”");
    li.querySelector(".delete").setAttribute("aria-label", "Delete “" + title + "”");
  }

  /** An inline editor in place of the title: Enter or leaving it saves, Escape cancels. */
  startRename(li) {
    if (li.querySelector(".rename-input")) return;
    const open = li.querySelector(".open");
    const input = document.createElement("input");
    input.type = "text";
    input.className = "rename-input";
    input.maxLength = 200;
    input.value = li.dataset.title;
    input.setAttribute("aria-label", "New title for “" + li.dataset.title + "”");
    open.hidden = true;
    li.prepend(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      input.remove();
      open.hidden = false;
      open.focus();
      if (save && title && title !== li.dataset.title) {
        const previous = li.dataset.title;
        this.setTitle(li, title);
        // shown at once; aria-busy says it is not saved yet (and rolls back if the save fails)
        li.setAttribute("aria-busy", "true");
        try {
          if (!(await this.handlers.rename(li.dataset.id, title))) this.setTitle(li, previous);
        } finally {
          li.removeAttribute("aria-busy");
        }
      }
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); finish(true); }
      else if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); finish(false); }
    });
    input.addEventListener("blur", () => finish(true));
  }

  onKey(event) {
    const li = event.target.closest("li.conversation");
    if (!li || event.target.classList.contains("rename-input")) return;
    const items = [...this.list.querySelectorAll("li.conversation")];
    const index = items.indexOf(li);
    const moves = {ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: items.length - 1};
    if (event.key in moves) {
      const target = items[Math.max(0, Math.min(items.length - 1, moves[event.key]))];
      target.querySelector(".open").focus();
      event.preventDefault();
    } else if (event.key === "F2") {
      this.startRename(li);
      event.preventDefault();
    } else if (event.key === "Delete") {
      this.handlers.remove(li.dataset.id, li.dataset.title);
      event.preventDefault();
    }
  }
}

/** Ask before deleting; resolves true for Delete, false for Cancel or Escape. */
export function confirmDelete(title) {
  const $ = (id) => document.getElementById(id);
  $("confirm-text").textContent = "Delete “" + title + "” and all its messages? This cannot be undone.";
  const dialog = $("confirm"), yes = $("confirm-delete"), no = $("confirm-cancel");
  return new Promise((resolve) => {
    // Answers come from the buttons' clicks and the dialog's cancel (Escape), not from its close
    // event, which fires later: a close left over from the last question must not answer this one.
    const answer = (value) => (event) => {
      event.preventDefault();
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      dialog.removeEventListener("cancel", onNo);
      dialog.close();
      resolve(value);
    };
    const onYes = answer(true), onNo = answer(false);
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener("cancel", onNo);
    dialog.showModal();
    no.focus();
  });
}

function iconButton(kind, symbol) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "icon " + kind;
  button.textContent = symbol;
  button.title = kind === "rename" ? "Rename" : "Delete";
  return button;
}
