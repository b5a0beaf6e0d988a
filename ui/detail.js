// The detail view: a dialog with the original and the result side by side or under a slider, the original's
// facts (EXIF without any position: the server never sends one), and the effective pipeline.

import { api } from './api.js';
import { h } from './dom.js';
import { formatBytes, formatDims, formatNumber, formatTimestamp } from './format.js';
import { t } from './i18n.js';
import { statusLabel, withToken } from './table.js';

const $ = (id) => document.getElementById(id);

/** Snackbar messages (set by setupDetail). */
let announce = () => {};
/** preset → the signed URL made for it (or the refusal) while the dialog is open. */
let signed = new Map();

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

/** Loads `href` (with the token) into each of `imgs`: the side-by-side one and the slider's. */
/** The image's variants: status, facts, a download link once made, and "Copy signed URL". */
function renderVariants(image) {
  const list = $('detail-variants');
  const entries = Object.entries(image.variants || {});
  if (!entries.length) {
    list.replaceChildren(h('li', { text: t('detail.variantsNone') }));
    return;
  }
  list.replaceChildren(
    ...entries.map(([preset, v]) => {
      const facts = v.status === 'completed' ? ` · ${v.content_type || '?'} · ${formatBytes(v.bytes)} · ${formatDims(v) || '?'}` : '';
      const line = h('div', { class: 'detail-variant__line' },
        h('strong', { class: 'detail-variant__name', text: preset }),
        ` ${statusLabel(v.status)}${facts}${v.error ? ` — ${v.error}` : ''}`);
      const actions = h('div', { class: 'detail-variant__actions' });
      if (v.status === 'completed' && v.url) {
        actions.append(withToken(h('a', { class: 'button button--text', href: v.url, download: '', text: t('variants.downloadShort'), 'aria-label': t('variants.download', { preset }), dataset: { action: 'download-variant' } }), preset, announce));
      }
      const copy = h('button', { class: 'button button--text', type: 'button', text: t('variants.copySigned'), 'aria-label': t('variants.copySignedLabel', { preset }), dataset: { action: 'copy-signed' } });
      copy.addEventListener('click', () => copySignedUrl(image.id, preset));
      actions.append(copy);
      const result = h('p', { class: 'detail-variant__result', role: 'status' });
      const done = signed.get(preset);
      if (done?.url) {
        result.append(done.copied ? t('variants.copiedLink') : t('variants.copyByHand'), ' ', h('a', { class: 'detail-variant__signed', href: done.url, target: '_blank', rel: 'noopener', text: done.url }));
      } else if (done?.error) {
        result.append(t('variants.signError', { message: done.error }));
      }
      return h('li', { class: 'detail-variant', dataset: { preset, status: v.status } }, line, actions, result);
    }),
  );
}

/** Asks the server to sign the variant's URL (no token needed to fetch it) and copies it. */
async function copySignedUrl(id, preset) {
  let entry;
  try {
    const answer = await api.signedUrl(id, preset);
    const url = new URL(answer.url, window.location.origin).href;
    let copied = false;
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch {
      // No clipboard (permission, an insecure origin): the link is shown to copy by hand.
    }
    entry = { url, copied };
    announce(copied ? t('variants.copied') : t('variants.copyByHand'));
  } catch (err) {
    // 404 when the server has no URL_SIGNING_KEY: its own words say so.
    entry = { error: err.message };
    announce(t('variants.signError', { message: err.message }));
  }
  if (showing?.id !== id) return;
  signed.set(preset, entry);
  renderVariants(showing);
  $('detail-variants').querySelector(`[data-preset="${CSS.escape(preset)}"] [data-action="copy-signed"]`)?.focus();
}

async function showImage(imgs, href) {
  try {
    const { blob } = await api.blob(href);
    const url = URL.createObjectURL(blob);
    shown.push(url);
    for (const img of imgs) {
      img.src = url;
      img.hidden = false;
    }
  } catch {
    for (const img of imgs) img.hidden = true;
  }
}

// ---- before/after: side by side, or stacked with a slider --------------------------------------

const MODE_KEY = 'image-processor.compare';
const MODES = ['side', 'slider'];

function savedMode() {
  try {
    const mode = localStorage.getItem(MODE_KEY);
    return MODES.includes(mode) ? mode : 'side';
  } catch {
    return 'side';
  }
}

/** Shows the two images side by side or stacked under the slider; the slider needs a result. */
function setMode(mode, { save = false } = {}) {
  const canSlide = showing?.status === 'completed';
  const effective = canSlide ? mode : 'side';
  $('detail-modes').hidden = !canSlide;
  for (const button of $('detail-modes').querySelectorAll('[data-mode]')) {
    button.setAttribute('aria-pressed', String(button.dataset.mode === effective));
  }
  $('detail-side').hidden = effective !== 'side';
  $('detail-compare').hidden = effective !== 'slider';
  if (save) {
    try {
      localStorage.setItem(MODE_KEY, mode);
    } catch {
      // storage disabled: the choice lasts for this page only
    }
  }
}

/** Moves the divider: the result shows right of it (a clip through the CSSOM: the CSP allows it). */
function setSplit(percent) {
  const value = Math.min(100, Math.max(0, Math.round(percent)));
  const range = $('compare-range');
  if (Number(range.value) !== value) range.value = String(value);
  $('compare-stage').style.setProperty('--split', `${value}%`);
  range.setAttribute('aria-valuetext', t('detail.sliderValue', { original: `${value}%`, result: `${100 - value}%` }));
}

function setupCompare() {
  for (const button of $('detail-modes').querySelectorAll('[data-mode]')) {
    button.addEventListener('click', () => setMode(button.dataset.mode, { save: true }));
  }
  const range = $('compare-range');
  range.addEventListener('input', () => setSplit(Number(range.value)));
  // Dragging on the picture moves the divider too (the range stays the keyboard's control).
  const stage = $('compare-stage');
  const follow = (event) => {
    const box = stage.getBoundingClientRect();
    if (box.width > 0) setSplit(((event.clientX - box.left) / box.width) * 100);
  };
  stage.addEventListener('pointerdown', (event) => {
    stage.setPointerCapture(event.pointerId);
    follow(event);
  });
  stage.addEventListener('pointermove', (event) => {
    if (stage.hasPointerCapture(event.pointerId)) follow(event);
  });
  setSplit(Number(range.value));
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
  const compared = [$('compare-original'), $('compare-processed')];
  original.hidden = true;
  processed.hidden = true;
  processed.closest('figure').hidden = current.status !== 'completed';
  setMode(savedMode());
  setSplit(Number($('compare-range').value));
  dialog.addEventListener(
    'close',
    () => {
      showing = null;
      signed = new Map();
      for (const url of shown) URL.revokeObjectURL(url);
      shown = [];
      for (const img of [original, processed, ...compared]) img.removeAttribute('src');
      returnFocusTo?.focus();
    },
    { once: true },
  );
  if (!dialog.open) dialog.showModal();
  showDeliveries(current.id);
  showImage([original, compared[0]], current.links.original);
  if (current.status === 'completed') showImage([processed, compared[1]], current.links.processed);
}

/** The dialog's texts for an image: its title, facts and variants. */
function renderTexts(image) {
  $('detail-title').textContent = image.filename || t('table.untitled', { id: image.id.slice(0, 8) });
  $('detail-facts').replaceChildren(...facts(image));
  renderVariants(image);
}

/**
 * A newer image object (an event): the open dialog's facts and variants follow it. The pictures
 * stay; a new result shows on reopening.
 */
export function updateDetail(image) {
  if (!showing || showing.id !== image.id || !$('detail-dialog').open) return;
  const focused = $('detail-variants').contains(document.activeElement) ? document.activeElement : null;
  const where = focused && [focused.closest('[data-preset]')?.dataset.preset, focused.dataset.action];
  showing = image;
  renderTexts(image);
  if (where) $('detail-variants').querySelector(`[data-preset="${CSS.escape(where[0])}"] [data-action="${where[1]}"]`)?.focus();
}

/** Redraws the open dialog in the current language (after a switch). */
export function refreshDetail() {
  if (!showing || !$('detail-dialog').open) return;
  renderTexts(showing);
  setSplit(Number($('compare-range').value)); // its aria-valuetext
  showDeliveries(showing.id);
}

export function setupDetail({ announce: say } = {}) {
  if (say) announce = say;
  $('detail-close').addEventListener('click', () => $('detail-dialog').close());
  setupCompare();
}
