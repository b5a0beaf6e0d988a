// The detail view: a dialog with the original and the result side by side, the original's
// facts (EXIF without any position: the server never sends one), and the effective pipeline.

import { api } from './api.js';
import { h } from './dom.js';
import { formatBytes, formatDims, formatTimestamp } from './format.js';

const $ = (id) => document.getElementById(id);

/** Object URLs of the images shown, revoked when the dialog closes. */
let shown = [];

const EXIF_LABELS = [
  ['make', 'Camera make'],
  ['model', 'Camera model'],
  ['lens', 'Lens'],
  ['taken_at', 'Taken'],
  ['exposure_time', 'Exposure', (v) => (v >= 1 ? `${v} s` : `1/${Math.round(1 / v)} s`)],
  ['f_number', 'Aperture', (v) => `f/${v}`],
  ['iso', 'ISO'],
  ['focal_length', 'Focal length', (v) => `${v} mm`],
  ['orientation', 'EXIF orientation'],
  ['has_gps', 'Location', (v) => (v ? 'recorded in the file (never shown or copied)' : 'none')],
];

function fact(label, value) {
  return [h('dt', { text: label }), h('dd', {}, value)];
}

function facts(image) {
  const o = image.original || {};
  const p = image.processed || {};
  const items = [
    fact('Status', image.status + (image.error ? ` — ${image.error}` : '')),
    fact('Original', `${o.content_type || '?'} · ${formatBytes(o.bytes)} · ${formatDims(o) || '?'}${o.frames > 1 ? ` · ${o.frames} frames` : ''}`),
  ];
  if (image.processed) items.push(fact('Result', `${p.content_type} · ${formatBytes(p.bytes)} · ${formatDims(p) || '?'}`));
  if (o.dominant_color) {
    // Through the CSSOM: the page's CSP refuses inline style attributes.
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.backgroundColor = o.dominant_color;
    items.push(fact('Dominant colour', [swatch, ` ${o.dominant_color}`]));
  }
  if (o.sha256) items.push(fact('SHA-256', h('code', { class: 'detail__hash', text: o.sha256 })));
  if (o.blurhash) items.push(fact('BlurHash', h('code', { text: o.blurhash })));
  for (const [key, label, show] of EXIF_LABELS) {
    const value = o.exif?.[key];
    if (value === undefined || value === null) continue;
    items.push(fact(label, show ? show(value) : String(value)));
  }
  items.push(fact('Uploaded', formatTimestamp(image.uploaded_at)));
  if (image.processed_at) items.push(fact('Finished', formatTimestamp(image.processed_at)));
  return items.flat();
}

/** One line per webhook event: where, its state, and each attempt's answer. */
async function showDeliveries(id) {
  const list = $('detail-deliveries');
  let answer;
  try {
    answer = await api.deliveries(id);
  } catch {
    list.replaceChildren(h('li', { text: 'Could not load the deliveries.' }));
    return;
  }
  const deliveries = answer?.deliveries || [];
  if (!deliveries.length) {
    list.replaceChildren(h('li', { text: 'None: no webhook URL for this image.' }));
    return;
  }
  list.replaceChildren(
    ...deliveries.map((d) => {
      const attempts = (d.attempts || [])
        .map((a) => `#${a.attempt} ${a.outcome}${a.status_code ? ` (HTTP ${a.status_code})` : ''}${a.error ? `: ${a.error}` : ''}`)
        .join('; ');
      return h('li', { class: 'delivery', dataset: { state: d.state } }, `${d.event} → ${d.url}: ${d.state}${attempts ? ` — ${attempts}` : ''}`);
    }),
  );
}

async function showImage(img, href) {
  try {
    const { blob } = await api.blob(href);
    const url = URL.createObjectURL(blob);
    shown.push(url);
    img.src = url;
    img.hidden = false;
  } catch {
    img.hidden = true;
  }
}

/** Opens the dialog for an image object (refetched, so the facts are current). */
export async function openDetail(image, returnFocusTo) {
  const dialog = $('detail-dialog');
  let current = image;
  try {
    current = (await api.get(image.id)) || image;
  } catch {
    // Show what the row knew.
  }
  $('detail-title').textContent = current.filename || `untitled ${current.id.slice(0, 8)}`;
  $('detail-facts').replaceChildren(...facts(current));
  $('detail-pipeline').textContent = JSON.stringify(current.pipeline, null, 2);
  const original = $('detail-original');
  const processed = $('detail-processed');
  original.hidden = true;
  processed.hidden = true;
  processed.closest('figure').hidden = current.status !== 'completed';
  dialog.addEventListener(
    'close',
    () => {
      for (const url of shown) URL.revokeObjectURL(url);
      shown = [];
      original.removeAttribute('src');
      processed.removeAttribute('src');
      returnFocusTo?.focus();
    },
    { once: true },
  );
  if (!dialog.open) dialog.showModal();
  showDeliveries(current.id);
  showImage(original, current.links.original);
  if (current.status === 'completed') showImage(processed, current.links.processed);
}

export function setupDetail() {
  $('detail-close').addEventListener('click', () => $('detail-dialog').close());
}
