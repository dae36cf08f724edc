"""The chat page at ``/``: one HTML file, inline CSS and JavaScript, no external assets.

It streams answers from ``/v1/chat/completions`` (server-sent events read with ``fetch``) and keeps
the conversation in the page only. Text is inserted with ``textContent``, never as HTML.
"""

from __future__ import annotations

import html
import json

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>__TITLE__</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:0 auto;padding:1em;color:#222}
#log{border:1px solid #ccc;border-radius:6px;min-height:300px;padding:.5em;overflow-y:auto;max-height:65vh}
.user,.assistant{white-space:pre-wrap;margin:.4em 0;padding:.4em .6em;border-radius:6px}
.user{background:#e8f0fe}.assistant{background:#f4f4f4}.error{color:#b00020}
form{display:flex;gap:.5em;margin-top:.5em}textarea{flex:1;font:inherit;min-height:3em}
label{font-size:13px;margin-right:1em}
</style></head><body>
<h1>__TITLE__</h1>
<div><label>max tokens <input id="max" type="number" value="128" min="1" style="width:5em"></label>
<label>temperature <input id="temp" type="number" value="0" min="0" max="2" step="0.1" style="width:4em"></label>
__KEY__</div>
<div id="log" aria-live="polite"></div>
<form id="form"><textarea id="text" placeholder="Ask something (Enter sends, Shift+Enter adds a line)"></textarea>
<button id="send">Send</button></form>
<script>
const MODEL = __MODEL__;
const messages = [];
const log = document.getElementById("log");
function add(role, text) {
  const div = document.createElement("div"); div.className = role; div.textContent = text;
  log.appendChild(div); log.scrollTop = log.scrollHeight; return div;
}
async function send(event) {
  event.preventDefault();
  const box = document.getElementById("text"); const text = box.value.trim(); if (!text) return;
  box.value = ""; messages.push({role: "user", content: text}); add("user", text);
  const out = add("assistant", ""); const button = document.getElementById("send"); button.disabled = true;
  const headers = {"Content-Type": "application/json"};
  const key = document.getElementById("key"); if (key && key.value) headers["Authorization"] = "Bearer " + key.value;
  const body = {model: MODEL, messages, stream: true, max_tokens: Number(document.getElementById("max").value),
                temperature: Number(document.getElementById("temp").value)};
  try {
    const response = await fetch("/v1/chat/completions", {method: "POST", headers, body: JSON.stringify(body)});
    if (!response.ok) { const e = await response.json(); throw new Error(e.error ? e.error.message : response.status); }
    const reader = response.body.getReader(); const decoder = new TextDecoder(); let buffer = "";
    for (;;) {
      const {value, done} = await reader.read(); if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut; while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
        const line = buffer.slice(0, cut).replace(/^data: /, ""); buffer = buffer.slice(cut + 2);
        if (line === "[DONE]") continue;
        const chunk = JSON.parse(line);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices[0].delta || {}; if (delta.content) out.textContent += delta.content;
        log.scrollTop = log.scrollHeight;
      }
    }
    messages.push({role: "assistant", content: out.textContent});
  } catch (error) { out.className = "assistant error"; out.textContent = "error: " + error.message; messages.pop(); }
  button.disabled = false;
}
document.getElementById("form").addEventListener("submit", send);
document.getElementById("text").addEventListener("keydown", e => {
  if (e.key === "Enter" && !e.shiftKey) send(e);
});
</script></body></html>
"""


def render_chat_page(model_id: str, *, api_key_required: bool) -> str:
    """The page for ``model_id``; with an API key required it shows a key field (kept in the page only)."""
    key = (
        '<label>API key <input id="key" type="password" autocomplete="off"></label>'
        if api_key_required
        else ""
    )
    return (
        _PAGE.replace("__TITLE__", html.escape(f"forgeml chat: {model_id}"))
        .replace("__MODEL__", json.dumps(model_id).replace("<", "\\u003c"))
        .replace("__KEY__", key)
    )
