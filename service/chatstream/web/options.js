// The page options: the seed's ui_init_params, as JSON in <script type="application/json"
// id="chatstream-ui-init">, which the server fills. Absent, empty or invalid JSON means defaults.
// Keys may sit at the top level or (as upstream's examples put them) under style_opts.

const LABELS = {
  button_label_send: "Send",
  button_label_stop_generating: "Stop",
  button_label_regenerate: "Regenerate",
  button_label_clear: "Clear",
  button_label_new_chat: "New chat",
  button_label_load_more: "Load more",
  label_input_placeholder: "Type a message… (Enter sends, Shift+Enter is a new line)",
};

const FLAGS = {
  show_ai_icon: false,
  show_human_icon: false,
  show_human_icon_on_input: false,
  regenerate_enabled: true,
  debug_window_enabled: false,
};

const STYLES = ["default", "casual_white", "dark"];

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Parse the element's JSON; a broken value falls back to the defaults instead of a blank page. */
export function parseInitElement(element) {
  const raw = element ? element.textContent.trim() : "";
  if (!raw) return {};
  try {
    const value = JSON.parse(raw);
    return isObject(value) ? value : {};
  } catch (error) {
    console.warn("chatstream: ignoring invalid page options:", error.message);
    return {};
  }
}

/** The page's options with every key filled (top level wins over style_opts). */
export function readOptions(doc = document) {
  const raw = parseInitElement(doc.getElementById("chatstream-ui-init"));
  const style = isObject(raw.style_opts) ? raw.style_opts : {};
  const pick = (key, fallback) => {
    for (const source of [raw, style]) {
      if (typeof source[key] === typeof fallback) return source[key];
    }
    return fallback;
  };
  const options = {
    welcomeMessage: pick("welcomeMessage", ""),
    developMode: pick("developMode", false),
    clearContextOnReload: pick("clearContextOnReload", false),
    styleName: STYLES.includes(raw.style_name) ? raw.style_name : "default",
    aiIconUrl: pick("ai_icon_url", ""),
    humanIconUrl: pick("human_icon_url", ""),
    pageSize: Math.min(100, Math.max(1, Math.trunc(pick("conversation_page_size", 20)) || 20)),
    labels: {},
  };
  for (const [key, fallback] of Object.entries(FLAGS)) options[key] = pick(key, fallback);
  for (const [key, fallback] of Object.entries(LABELS)) {
    const value = pick(key, fallback);
    options.labels[key] = value.trim() ? value : fallback;
  }
  return options;
}

/** Put the options' labels, style and panels on the page (``ui`` holds its elements by name). */
export function applyOptions(options, ui) {
  const labels = options.labels;
  document.body.dataset.style = options.styleName;
  ui.send.textContent = labels.button_label_send;
  ui.stop.textContent = labels.button_label_stop_generating;
  ui.regenerate.textContent = labels.button_label_regenerate;
  ui.clear.textContent = labels.button_label_clear;
  ui.newChat.textContent = labels.button_label_new_chat;
  ui.more.textContent = labels.button_label_load_more;
  ui.input.placeholder = labels.label_input_placeholder;
  ui.debug.hidden = !(options.developMode || options.debug_window_enabled);
  if (options.show_human_icon_on_input) {
    const icon = document.getElementById("input-icon");
    icon.hidden = false;
    icon.textContent = "You";
    if (options.humanIconUrl) {
      const img = document.createElement("img");
      img.alt = "";
      img.src = options.humanIconUrl;
      img.addEventListener("load", () => icon.replaceChildren(img));
    }
  }
}
