const MODEL = JSON.parse(document.getElementById("model").textContent);
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
      let cut; while ((cut = buffer.indexOf("\n\n")) >= 0) {
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
