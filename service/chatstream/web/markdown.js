// Replies are Markdown: marked renders it, DOMPurify removes anything that could run (script,
// event handlers, javascript: URLs) before it reaches the page. Both are vendored (vendor/).
// User messages never come through here: they are shown as plain text.

const PURIFY_CONFIG = {
  USE_PROFILES: {html: true},
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option", "dialog"],
  FORBID_ATTR: ["style", "id", "name"],
  RETURN_DOM_FRAGMENT: true,
};

let hooked = false;

function libraries() {
  const {marked, DOMPurify} = globalThis;
  if (!marked || !DOMPurify || !DOMPurify.isSupported) return null;
  if (!hooked) {
    hooked = true;
    // Links open in a new tab without handing it this page (window.opener) or the referrer.
    DOMPurify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A" && node.hasAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
  }
  return {marked, DOMPurify};
}

/** Render ``text`` as sanitized Markdown into ``target`` (plain text when the libraries are missing). */
export function renderMarkdown(target, text) {
  const libs = libraries();
  if (!libs) {
    target.textContent = text;
    target.classList.add("plain");
    return;
  }
  const html = libs.marked.parse(text, {gfm: true, breaks: true, async: false});
  const fragment = libs.DOMPurify.sanitize(html, PURIFY_CONFIG);
  linkOutsideImages(fragment);
  target.replaceChildren(fragment);
  addCopyButtons(target);
}

/** An image from another site becomes a link to it: the page itself loads nothing from outside. */
function linkOutsideImages(root) {
  for (const img of root.querySelectorAll("img")) {
    const src = img.getAttribute("src") || "";
    let url = null;
    try {
      url = new URL(src, document.baseURI);
    } catch {
      // not a URL at all: the image is dropped below
    }
    if (url && (url.protocol === "data:" || url.origin === location.origin)) continue;
    const link = document.createElement("a");
    link.textContent = "[image: " + (img.getAttribute("alt") || "link") + "]";
    if (url && (url.protocol === "https:" || url.protocol === "http:")) {
      link.href = url.href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
    }
    img.replaceWith(link);
  }
}

function addCopyButtons(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector("code") || pre;
    const block = document.createElement("div");
    block.className = "code-block";
    pre.replaceWith(block);
    const bar = document.createElement("div");
    bar.className = "code-bar";
    const language = [...code.classList].find((name) => name.startsWith("language-"));
    const label = document.createElement("span");
    label.className = "code-language";
    label.textContent = language ? language.slice("language-".length) : "code";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy code to the clipboard");
    button.addEventListener("click", () => copyText(code.textContent, button));
    bar.append(label, button);
    block.append(bar, pre);
  }
}

async function copyText(text, button) {
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch {
    // No clipboard API (insecure context, denied permission): copy through a selection instead.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    copied = document.execCommand("copy");
    area.remove();
  }
  button.textContent = copied ? "Copied" : "Copy failed";
  button.dataset.copied = String(copied);
  setTimeout(() => { button.textContent = "Copy"; delete button.dataset.copied; }, 1500);
}
