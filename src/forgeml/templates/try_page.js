const S = JSON.parse(document.getElementById('schema').textContent);
const form = document.getElementById('predict-form');
const fields = document.getElementById('fields');
const result = document.getElementById('result');
let image = null;  // nested [C][H][W] array on the training pixel scale
let photo = null;  // the dropped file itself, sent as it is when the model was trained on files
const TOP = 5;  // classes shown, most probable first
for (const column of S.columns) {
  const label = document.createElement('label');
  const span = document.createElement('span'); span.textContent = column.name; label.appendChild(span);
  const input = document.createElement('input');
  input.name = column.name; input.dataset.kind = column.kind;
  if (column.kind === 'numeric') { input.type = 'number'; input.step = 'any'; input.placeholder = 'empty = impute'; }
  else if (column.kind === 'text') { input.type = 'text'; input.placeholder = 'free text'; input.style.width = '30rem'; }
  else {
    input.type = 'text'; const list = document.createElement('datalist');
    list.id = 'list-' + fields.children.length; input.setAttribute('list', list.id);
    for (const c of column.categories) { const o = document.createElement('option'); o.value = c; list.appendChild(o); }
    label.appendChild(list); if (column.categories.length) input.value = column.categories[0];
  }
  label.appendChild(input); fields.appendChild(label);
}
if (S.image) {
  document.getElementById('image-zone').hidden = false;
  const drop = document.getElementById('drop'), file = document.getElementById('image-file');
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); if (e.dataTransfer.files[0]) load(e.dataTransfer.files[0]); });
  file.addEventListener('change', () => { if (file.files[0]) load(file.files[0]); });
}
function nested(flat, [c, h, w]) {
  const out = [];
  for (let k = 0; k < c; k++) { const plane = [];
    for (let y = 0; y < h; y++) plane.push(Array.from(flat.slice((k * h + y) * w, (k * h + y + 1) * w)));
    out.push(plane); }
  return out;
}
function preview(flat, [c, h, w]) {
  const canvas = document.getElementById('preview'); canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d'), data = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = Math.max(0, Math.min(255, Math.round(flat[i] / S.image_scale * 255)));
    data.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(data, 0, 0); canvas.hidden = false;
}
async function load(file) {
  const [c, h, w] = S.image.shape;
  if (S.upload && !file.name.toLowerCase().endsWith('.npy')) {
    // Trained on image files: the file goes to the server as it is and is decoded there exactly as in
    // training, so the browser does not decode it (a file it cannot show still gets the server's answer).
    photo = file; image = null;
    const shown = document.getElementById('photo');
    if (shown.src) URL.revokeObjectURL(shown.src);
    shown.src = URL.createObjectURL(file); shown.hidden = false;
    document.getElementById('image-status').textContent = file.name + ' loaded';
    form.requestSubmit(); return;
  }
  let flat;
  try {
    if (file.name.toLowerCase().endsWith('.npy')) flat = parseNpy(await file.arrayBuffer(), c * h * w);
    else flat = await decodePicture(file, c, h, w);
  } catch (err) { show({error: {message: String(err.message || err)}}); return; }
  image = nested(flat, [c, h, w]); preview(flat, [c, h, w]);
  photo = S.upload && !file.name.toLowerCase().endsWith('.npy') ? file : null;
  document.getElementById('image-status').textContent = file.name + ' loaded (' + c + 'x' + h + 'x' + w + ')';
}
async function decodePicture(file, c, h, w) {
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement('canvas'); canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d'); ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data, flat = new Float64Array(c * h * w);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b, a] = [px[4 * i], px[4 * i + 1], px[4 * i + 2], px[4 * i + 3] / 255];
    const channels = c === 1 ? [(0.299 * r + 0.587 * g + 0.114 * b) * a] : [r * a, g * a, b * a];
    for (let k = 0; k < c; k++) flat[k * h * w + i] = channels[k] / 255 * S.image_scale;
  }
  return flat;
}
function parseNpy(buffer, size) {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== 0x93 || String.fromCharCode(...bytes.slice(1, 6)) !== 'NUMPY') throw new Error('not a .npy file');
  const major = bytes[6], headerLength = major === 1 ? bytes[8] | bytes[9] << 8 : new DataView(buffer).getUint32(8, true);
  const start = major === 1 ? 10 : 12, header = new TextDecoder().decode(bytes.slice(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error('Fortran-ordered .npy is not supported');
  const types = {'<f4': Float32Array, '<f8': Float64Array, '|u1': Uint8Array, '<u1': Uint8Array, '<i4': Int32Array, '<i8': BigInt64Array};
  if (!types[descr]) throw new Error('unsupported .npy dtype ' + descr);
  const data = new types[descr](buffer.slice(start + headerLength));
  if (data.length !== size) throw new Error('the array holds ' + data.length + ' values; the model needs ' + size);
  return Float64Array.from(data, Number);
}
function show(body) {
  result.replaceChildren();
  if (body.error) { const p = document.createElement('p'); p.className = 'error'; p.textContent = body.error.message; result.appendChild(p); return; }
  const p = body.predictions[0], head = document.createElement('p');
  head.innerHTML = 'Prediction: <strong class="prediction"></strong>';
  head.querySelector('.prediction').textContent = String(p.prediction); result.appendChild(head);
  if (p.probabilities) {
    const table = document.createElement('table'); table.id = 'probabilities';
    const ranked = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [label, value] of ranked.slice(0, TOP)) {
      const row = table.insertRow(); row.insertCell().textContent = label;
      row.insertCell().textContent = (100 * value).toFixed(1) + '%';
      const bar = document.createElement('span'); bar.className = 'bar'; bar.style.width = (value * 12) + 'rem';
      row.insertCell().appendChild(bar);
    }
    result.appendChild(table);
    if (ranked.length > TOP) {
      const more = document.createElement('p'); more.className = 'more';
      more.textContent = 'top ' + TOP + ' of ' + ranked.length + ' classes'; result.appendChild(more);
    }
  }
}
form.addEventListener('submit', async e => {
  e.preventDefault();
  const row = {};
  for (const input of fields.querySelectorAll('input')) {
    const v = input.value.trim();
    row[input.name] = v === '' ? null : (input.dataset.kind === 'numeric' ? Number(v) : v);
  }
  if (S.image && !photo) { if (!image) { show({error: {message: 'choose an image first'}}); return; } row.image = image; }
  const headers = {'Content-Type': 'application/json'}, key = document.getElementById('api-key');
  if (key && key.value) headers.Authorization = 'Bearer ' + key.value;
  result.textContent = 'predicting...';
  try {
    let response;
    if (photo) {  // multipart: the browser sets the content type with its boundary
      delete headers['Content-Type']; const body = new FormData(); body.append('file', photo);
      response = await fetch('v1/predict/image', {method: 'POST', headers, body});
    } else response = await fetch('v1/predict', {method: 'POST', headers, body: JSON.stringify({rows: [row]})});
    show(await response.json());
  } catch (err) { show({error: {message: String(err)}}); }
});
