// The operation controls: turns the form into the SPEC's flat multipart fields, sending only what the user set.

import { h } from './dom.js';

const VALUE_FIELDS = [
  'width', 'height', 'fit', 'gravity', 'focus', 'background', 'format', 'quality', 'rotate', 'flip', 'blur', 'sharpen', 'brightness', 'contrast',
  'saturation', 'hue', 'gamma', 'sepia', 'tint', 'kernel', 'pixelate',
  'watermark', 'watermark_gravity', 'watermark_opacity', 'watermark_scale', 'priority', 'not_before',
  'frames', 'callback_url',
];
const SWITCHES = ['grayscale', 'invert', 'equalize', 'dedupe'];

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

const LABELS = {
  width: (v) => `width ${v}px`,
  height: (v) => `height ${v}px`,
  fit: (v) => `fit ${v}`,
  gravity: (v) => `gravity ${v}`,
  focus: (v) => `focus ${v}`,
  background: (v) => `background #${v.replace(/^#/, '')}`,
  format: (v) => `as ${v.toUpperCase()}`,
  quality: (v) => `quality ${v}`,
  rotate: (v) => `rotate ${v}°`,
  flip: (v) => (v === 'h' ? 'flip horizontally' : 'flip vertically'),
  blur: (v) => `blur ${v}`,
  sharpen: (v) => `sharpen ${v}`,
  brightness: (v) => `brightness ${v}`,
  contrast: (v) => `contrast ${v}`,
  grayscale: () => 'grayscale',
  saturation: (v) => `saturation ${v}`,
  hue: (v) => `hue ${v}°`,
  gamma: (v) => `gamma ${v}`,
  sepia: (v) => `sepia ${v}`,
  tint: (v) => `tint #${v.replace(/^#/, '')}`,
  kernel: (v) => `${v} kernel`,
  pixelate: (v) => `pixelate ${v}px`,
  watermark: (_, form) => `watermark “${form.elements.watermark.selectedOptions[0]?.textContent || 'image'}”`,
  watermark_gravity: (v) => `watermark ${v}`,
  watermark_opacity: (v) => `watermark opacity ${v}`,
  watermark_scale: (v) => `watermark width ${v}%`,
  priority: (v) => `priority ${v}`,
  not_before: (v) => `not before ${new Date(v).toLocaleString()}`,
  invert: () => 'invert',
  equalize: () => 'equalize',
  frames: (v) => (v === 'first' ? 'first frame only' : 'every frame'),
  callback_url: (v) => `webhook to ${hostOf(v)}`,
  dedupe: () => 'skip duplicates',
};

/**
 * The operation controls. `listCompleted` (optional) returns a promise of completed images, to
 * offer as watermarks; the list is refreshed whenever the watermark picker gets focus.
 */
export function createControls(form, { listCompleted } = {}) {
  const summary = document.getElementById('ops-summary');

  function fields() {
    const out = [];
    for (const name of VALUE_FIELDS) {
      const value = form.elements[name].value.trim();
      if (value === '') continue;
      // A datetime-local is the browser's local time without a zone: send it as RFC 3339 UTC.
      out.push([name, name === 'not_before' ? new Date(value).toISOString() : value]);
    }
    for (const name of SWITCHES) {
      if (form.elements[name].checked) out.push([name, 'true']);
    }
    return out;
  }

  function updateSummary() {
    const set = fields();
    summary.textContent = set.length
      ? `Next uploads: ${set.map(([name, value]) => LABELS[name](value, form)).join(' · ')}.`
      : "No options set: the server's default pipeline applies.";
    for (const input of form.querySelectorAll('input[type="number"], input[type="text"], input[type="url"]')) {
      input.classList.toggle('field__input--invalid', !input.checkValidity());
    }
  }

  const picker = form.elements.watermark;
  async function refreshWatermarks() {
    if (!listCompleted) return;
    let images;
    try {
      images = await listCompleted();
    } catch {
      return; // the picker keeps what it had; uploads report any problem themselves
    }
    const chosen = picker.value;
    const options = [h('option', { value: '' }, 'none')];
    for (const image of images) {
      options.push(h('option', { value: image.id }, image.filename || image.id.slice(0, 8)));
    }
    picker.replaceChildren(...options);
    picker.value = images.some((image) => image.id === chosen) ? chosen : '';
    updateSummary();
  }
  picker.addEventListener('focus', refreshWatermarks);
  picker.addEventListener('pointerdown', refreshWatermarks);

  form.addEventListener('input', updateSummary);
  form.addEventListener('change', updateSummary);
  // The reset event fires before the form's values are cleared.
  form.addEventListener('reset', () => setTimeout(updateSummary));
  form.addEventListener('submit', (event) => event.preventDefault());
  updateSummary();

  return {
    fields,
    refreshWatermarks,
    /** True when every field is in range; otherwise shows the browser's message on the first bad one. */
    validate() {
      for (const input of form.querySelectorAll('input')) {
        if (!input.checkValidity()) {
          input.reportValidity();
          input.focus();
          return false;
        }
      }
      return true;
    },
  };
}
