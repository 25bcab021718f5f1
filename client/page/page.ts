import { RemoteModel, type RemoteResult } from '../remote.js';

/**
 * The demo page's script (bundled with node-seal's wasm build by `heprune
 * serve --demo`): opens a session with the server it was served from, then
 * classifies what the person draws or the test image they pick, encrypting
 * in the page. The pixels shown are exactly the pixels sent.
 */

interface Sample {
  index: number;
  label?: number;
  pixels: number[];
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string, error = false) => {
  const el = $('status');
  el.textContent = text;
  el.className = error ? 'error' : '';
};
const kb = (b: number) => (b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);
const ms = (v: number) => `${v.toFixed(0)} ms`;

/** Pixels (0..255, HWC) drawn onto a canvas of `scale` screen pixels each. */
function paint(canvas: HTMLCanvasElement, pixels: ArrayLike<number>, [h, w, c]: number[], scale: number): void {
  canvas.width = w * scale;
  canvas.height = h * scale;
  const g = canvas.getContext('2d')!;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const at = (y * w + x) * c;
      const [r, gr, b] = c === 1 ? [pixels[at], pixels[at], pixels[at]] : [pixels[at], pixels[at + 1], pixels[at + 2]];
      g.fillStyle = `rgb(${r},${gr},${b})`;
      g.fillRect(x * scale, y * scale, scale, scale);
    }
}

async function main(): Promise<void> {
  status('making keys and opening a session…');
  // The server's base is the page's parent path (/demo/ → /), so the page also works behind a path-prefixed proxy.
  const remote = await RemoteModel.connect(new URL('../', location.href).href);
  const { card } = remote.client;
  const shape = card.model.shape ?? card.input.shape;
  const [h, w, c] = shape;
  const scale = Math.max(1, Math.floor(224 / Math.max(h, w)));
  const info = remote.info;
  $('model').textContent =
    `${card.model.name ?? 'model'} (${card.model.dataset ?? 'no dataset'}, ${shape.join('×')}), CKKS N=${card.params.polyModulusDegree}, ` +
    `${card.galoisSteps.length} Galois keys`;
  status(`session open: ${kb(info.keyBytes)} of evaluation keys made in ${ms(info.keygenMs)}, uploaded in ${ms(info.uploadMs)}`);

  const pixels = new Uint8Array(h * w * c);
  const pad = $<HTMLCanvasElement>('pad');
  let shown: number | undefined;
  const redraw = () => paint(pad, pixels, shape, scale);
  redraw();

  // Drawing (one-channel models): a soft round brush in model pixels, white on black as MNIST is.
  let down = false;
  const stroke = (e: PointerEvent) => {
    if (!down || c !== 1) return;
    const r = pad.getBoundingClientRect();
    const px = ((e.clientX - r.left) / r.width) * w,
      py = ((e.clientY - r.top) / r.height) * h;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const d = Math.hypot(x + 0.5 - px, y + 0.5 - py);
        const v = d < 1 ? 255 : d < 2 ? 255 * (2 - d) : 0;
        pixels[y * w + x] = Math.max(pixels[y * w + x], Math.round(v));
      }
    shown = undefined;
    redraw();
  };
  pad.addEventListener('pointerdown', (e) => {
    down = true;
    pad.setPointerCapture(e.pointerId);
    stroke(e);
  });
  pad.addEventListener('pointermove', stroke);
  pad.addEventListener('pointerup', () => (down = false));
  $('clear').addEventListener('click', () => {
    pixels.fill(0);
    shown = undefined;
    redraw();
  });

  const samples = (await (await fetch('samples')).json()) as { dataset?: string; images: Sample[] };
  const labelOf = new Map<number, number | undefined>();
  for (const s of samples.images) {
    const b = document.createElement('button');
    b.id = `sample-${s.index}`;
    b.title = `test image ${s.index}${s.label !== undefined ? ` (label ${s.label})` : ''}`;
    const thumb = document.createElement('canvas');
    paint(thumb, s.pixels, shape, Math.max(1, Math.floor(56 / Math.max(h, w))));
    b.appendChild(thumb);
    b.addEventListener('click', () => {
      pixels.set(s.pixels);
      shown = s.index;
      labelOf.set(s.index, s.label);
      redraw();
    });
    $('samples').appendChild(b);
  }

  const classify = $<HTMLButtonElement>('classify');
  classify.disabled = false;
  classify.addEventListener('click', () => {
    classify.disabled = true;
    const index = shown;
    status('encrypting, evaluating on the server, decrypting…');
    remote
      .infer(remote.client.normalize(pixels))
      .then((r) => {
        show(r, index, index === undefined ? undefined : labelOf.get(index));
        status('done');
      })
      .catch((e: Error) => status(e.message, true))
      .finally(() => (classify.disabled = false));
  });
  // Closing the tab ends the session (its keys would otherwise hold server memory until it expires); a page kept in
  // the back/forward cache keeps it, and one restored without it starts over.
  addEventListener('pagehide', (e) => {
    if (!e.persisted) void remote.close();
  });
}

function show(r: RemoteResult, index: number | undefined, label: number | undefined): void {
  const result = $('result');
  result.hidden = false;
  // For scripted checks: which image this answers and what it predicted.
  result.dataset.index = index === undefined ? 'drawn' : String(index);
  result.dataset.prediction = String(r.prediction);
  result.dataset.output = JSON.stringify(r.output);
  $('prediction').textContent = String(r.prediction);
  $('label').textContent = label === undefined ? '' : `(test image ${index}, label ${label})`;
  const top = Math.max(...r.output),
    low = Math.min(...r.output);
  $('scores').innerHTML = r.output
    .map(
      (v, j) =>
        `<tr><td>${j}</td><td>${v.toFixed(3)}</td><td><span class="bar" style="width:${(((v - low) / (top - low || 1)) * 12).toFixed(1)}em"></span></td></tr>`,
    )
    .join('');
  const rows: [string, string][] = [
    ['encrypt (page)', ms(r.encryptMs)],
    ['server evaluation', ms(r.serverMs)],
    ['round trip', ms(r.roundTripMs)],
    ['decrypt (page)', ms(r.decryptMs)],
    ['refresh rounds', `${r.refreshRounds}${r.refreshRounds ? ` (${ms(r.refreshClientMs)} in the page)` : ''}`],
    ['sent', kb(r.bytesUp)],
    ['received', kb(r.bytesDown)],
  ];
  $('timings').innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('');
}

main().catch((e: Error) => status(`${e.message}`, true));
