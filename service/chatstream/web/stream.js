// POST /chat_stream and read its SSE events (Accept: text/event-stream). Refusals (busy, bad
// request, unknown conversation) come back as JSON instead of a stream.

export const MESSAGE_ID_HEADER = "x-chatstream-last-generated-message-id";

/** Split an SSE buffer into complete "data:" payloads; returns [payloads, rest]. */
export function takeEvents(buffer) {
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

/**
 * Stream one turn: ``onOpen()`` once the server accepted it, ``onText(text)`` with the reply so far
 * after every delta. Resolves to
 * {refused: errorBody} or {text, messageId, failed, finishReason, usage, events}; rejects when
 * ``signal`` aborts it (the server then cancels the generation).
 */
export async function streamTurn(body, signal, {onOpen, onText}) {
  const response = await fetch("chat_stream", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Accept": "text/event-stream"},
    body: JSON.stringify(body),
    signal,
  });
  const type = response.headers.get("content-type") || "";
  if (!type.includes("text/event-stream")) {
    // 429 (or 200 with the seed's default) {"error": "too_many_requests"}; 4xx/5xx {"error", "detail"}
    const error = await response.json().catch(() => ({error: "http_" + response.status}));
    return {refused: error, httpStatus: response.status};
  }
  onOpen();
  const result = {text: "", messageId: response.headers.get(MESSAGE_ID_HEADER), failed: null,
    finishReason: null, usage: null, events: 0};
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    let payloads;
    [payloads, buffer] = takeEvents(buffer + decoder.decode(value, {stream: true}));
    for (const data of payloads) {
      if (data === "[DONE]") continue;
      const event = JSON.parse(data);
      result.events += 1;
      result.text += event.delta || "";
      if (event.finished) {
        result.text = event.text ?? result.text;
        result.messageId = event.message_id || result.messageId;
        result.finishReason = event.finish_reason || null;
        result.usage = event.usage || null;
        if (event.error) result.failed = event.error;
      }
      onText(result.text);
    }
  }
  return result;
}
