// Images the page sends: from a file input, a drop or the clipboard, kept as data URLs (what the
// job API accepts); and the ControlNet hint preview, computed by the server with the canny the
// pipeline uses, so what is shown is exactly the hint that is sent.
import { api, errorText } from './api.js';

export function readAsDataURL(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error('the image could not be read'));
    r.readAsDataURL(blob);
  });
}

// Wires a drop zone + file input; onImage(dataURL) for each image given.
export function imageInput(drop, input, onImage) {
  const take = async (file) => {
    if (!file || !/^image\/(png|jpeg)$/.test(file.type)) return;
    onImage(await readAsDataURL(file));
  };
  input.addEventListener('change', () => take(input.files[0]));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    take(e.dataTransfer.files[0]);
  });
  drop.addEventListener('paste', (e) => {
    const item = [...e.clipboardData.items].find((i) => i.type.startsWith('image/'));
    if (item) { e.preventDefault(); take(item.getAsFile()); }
  });
  return take;
}

// The canny hint of `dataURL` as a data URL (PNG).
export async function cannyHint(dataURL, low, high) {
  const res = await fetch('/v1/preprocess/canny', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ image: dataURL, low, high }),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new Error(`hint: ${errorText(res.status, body)}`);
  }
  return readAsDataURL(await res.blob());
}

export { api };
