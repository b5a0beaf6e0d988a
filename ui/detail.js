// The detail view: a dialog with the original and the result side by side, the original's
// facts (EXIF without any position: the server never sends one), and the effective pipeline.

import { api } from './api.js';
import { h } from './dom.js';
import { formatBytes, formatDims, formatNumber, formatTimestamp } from './format.js';
import { t } from './i18n.js';
import { statusLabel } from './table.js';

const $ = (id) => document.getElementById(id);

/** Object URLs of the images shown, revoked when the dialog closes. */
let shown = [];
/** The image the open dialog shows, redrawn on a language switch. */
let showing = null;

const EXIF_LABELS = [
  ['make', 'detail.make'],
  ['model', 'detail.model'],
  ['lens', 'detail.lens'],
  ['taken_at', 'detail.taken'],
  ['exposure_time', 'detail.exposure', (v) => (v >= 1 ? `${formatNumber(v)} s` : `1/${Math.round(1 / v)} s`)],
  ['f_number', 'detail.aperture', (v) => `f/${formatNumber(v)}`],
  ['iso', 'detail.iso'],
  ['focal_length', 'detail.focalLength', (v) => `${formatNumber(v)} mm`],
  ['orientation', 'detail.orientation'],
  ['has_gps', 'detail.location', (v) => (v ? t('detail.gpsRecorded') : t('detail.gpsNone'))],
];
const DELIVERY_STATES = {
  pending: 'delivery.state.pending',
  delivering: 'delivery.state.delivering',
  delivered: 'delivery.state.delivered',
  failed: 'delivery.state.failed',
};
const ATTEMPT_OUTCOMES = {
  delivered: 'delivery.outcome.delivered',
  retried: 'delivery.outcome.retried',
  failed: 'delivery.outcome.failed',
  refused: 'delivery.outcome.refused',
};
const word = (keys, value) => (keys[value] ? t(keys[value]) : value);

function fact(label, value) {
  return [h('dt', { text: label }), h('dd', {}, value)];
}

function facts(image) {
  const o = image.original || {};
  const p = image.processed || {};
  const items = [
    fact(t('detail.status'), statusLabel(image.status) + (image.error ? ` — ${image.error}` : '')),
    fact(t('detail.original'), `${o.content_type || '?'} · ${formatBytes(o.bytes)} · ${formatDims(o) || '?'}${o.frames > 1 ? ` · ${t('detail.frames', { count: o.frames })}` : ''}`),
  ];
  if (image.processed) items.push(fact(t('detail.result'), `${p.content_type} · ${formatBytes(p.bytes)} · ${formatDims(p) || '?'}`));
  if (o.dominant_color) {
    // Through the CSSOM: the page's CSP refuses inline style attributes.
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.backgroundColor = o.dominant_color;
    items.push(fact(t('detail.dominantColour'), [swatch, ` ${o.dominant_color}`]));
  }
  if (o.sha256) items.push(fact(t('detail.sha256'), h('code', { class: 'detail__hash', text: o.sha256 })));
  if (o.blurhash) items.push(fact(t('detail.blurhash'), h('code', { text: o.blurhash })));
  for (const [key, label, show] of EXIF_LABELS) {
    const value = o.exif?.[key];
    if (value === undefined || value === null) continue;
    items.push(fact(t(label), show ? show(value) : String(value)));
  }
  items.push(fact(t('detail.uploaded'), formatTimestamp(image.uploaded_at)));
  if (image.processed_at) items.push(fact(t('detail.finished'), formatTimestamp(image.processed_at)));
  return items.flat();
}

/** One line per webhook event: where, its state, and each attempt's answer. */
async function showDeliveries(id) {
  const list = $('detail-deliveries');
  let answer;
  try {
    answer = await api.deliveries(id);
  } catch {
    list.replaceChildren(h('li', { text: t('detail.deliveriesError') }));
    return;
  }
  const deliveries = answer?.deliveries || [];
  if (!deliveries.length) {
    list.replaceChildren(h('li', { text: t('detail.deliveriesNone') }));
    return;
  }
  list.replaceChildren(
    ...deliveries.map((d) => {
      const attempts = (d.attempts || [])
        .map((a) => `#${a.attempt} ${word(ATTEMPT_OUTCOMES, a.outcome)}${a.status_code ? ` (HTTP ${a.status_code})` : ''}${a.error ? `: ${a.error}` : ''}`)
        .join('; ');
      // Event names (image.completed) are the API's, as receivers see them.
      return h('li', { class: 'delivery', dataset: { state: d.state } }, `${d.event} → ${d.url}: ${word(DELIVERY_STATES, d.state)}${attempts ? ` — ${attempts}` : ''}`);
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
  showing = current;
  renderTexts(current);
  $('detail-pipeline').textContent = JSON.stringify(current.pipeline, null, 2);
  const original = $('detail-original');
  const processed = $('detail-processed');
  original.hidden = true;
  processed.hidden = true;
  processed.closest('figure').hidden = current.status !== 'completed';
  dialog.addEventListener(
    'close',
    () => {
      showing = null;
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

/** The dialog's texts for an image: its title and facts. */
function renderTexts(image) {
  $('detail-title').textContent = image.filename || t('table.untitled', { id: image.id.slice(0, 8) });
  $('detail-facts').replaceChildren(...facts(image));
}

/** Redraws the open dialog in the current language (after a switch). */
export function refreshDetail() {
  if (!showing || !$('detail-dialog').open) return;
  renderTexts(showing);
  showDeliveries(showing.id);
}

export function setupDetail() {
  $('detail-close').addEventListener('click', () => $('detail-dialog').close());
}
