// The operation controls: turns the form into the SPEC's flat multipart fields, sending only what the user set.

import { h } from './dom.js';
import { formatTimestamp } from './format.js';
import { localize, t } from './i18n.js';

const VALUE_FIELDS = [
  'width', 'height', 'fit', 'gravity', 'focus', 'background', 'format', 'quality', 'rotate', 'flip', 'blur', 'sharpen', 'brightness', 'contrast',
  'saturation', 'hue', 'gamma', 'sepia', 'tint', 'kernel', 'pixelate',
  'watermark', 'watermark_gravity', 'watermark_opacity', 'watermark_scale', 'priority', 'not_before',
  'frames', 'callback_url',
];
const SWITCHES = ['grayscale', 'invert', 'equalize', 'dedupe'];
/** Fields about the upload rather than the pictures: not part of a preset's pipeline. */
const NOT_PIPELINE = new Set(['priority', 'not_before', 'dedupe', 'callback_url']);
/** Sent as JSON numbers in a preset (the rest as the strings the form holds). */
const NUMERIC = new Set([
  'width', 'height', 'quality', 'rotate', 'blur', 'sharpen', 'brightness', 'contrast', 'saturation', 'hue', 'gamma',
  'sepia', 'pixelate', 'watermark_opacity', 'watermark_scale',
]);

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** A select's chosen option as shown (translated through its data-i18n), else the raw value. */
const shown = (form, name, value) => form.elements[name].selectedOptions[0]?.textContent || value;

/** Each field's part of the summary line, in the current language. */
const LABELS = {
  width: (v) => t('summary.width', { value: v }),
  height: (v) => t('summary.height', { value: v }),
  fit: (v, form) => t('summary.fit', { value: shown(form, 'fit', v) }),
  gravity: (v, form) => t('summary.gravity', { value: shown(form, 'gravity', v) }),
  focus: (v) => t('summary.focus', { value: v }),
  background: (v) => t('summary.background', { value: v.replace(/^#/, '') }),
  format: (v) => t('summary.format', { value: v.toUpperCase() }),
  quality: (v) => t('summary.quality', { value: v }),
  rotate: (v) => t('summary.rotate', { value: v }),
  flip: (v) => (v === 'h' ? t('summary.flipH') : t('summary.flipV')),
  blur: (v) => t('summary.blur', { value: v }),
  sharpen: (v) => t('summary.sharpen', { value: v }),
  brightness: (v) => t('summary.brightness', { value: v }),
  contrast: (v) => t('summary.contrast', { value: v }),
  grayscale: () => t('summary.grayscale'),
  saturation: (v) => t('summary.saturation', { value: v }),
  hue: (v) => t('summary.hue', { value: v }),
  gamma: (v) => t('summary.gamma', { value: v }),
  sepia: (v) => t('summary.sepia', { value: v }),
  tint: (v) => t('summary.tint', { value: v.replace(/^#/, '') }),
  kernel: (v, form) => t('summary.kernel', { value: shown(form, 'kernel', v) }),
  pixelate: (v) => t('summary.pixelate', { value: v }),
  watermark: (_, form) => t('summary.watermark', { name: form.elements.watermark.selectedOptions[0]?.textContent || t('summary.watermarkUnnamed') }),
  watermark_gravity: (v, form) => t('summary.watermarkGravity', { value: shown(form, 'watermark_gravity', v) }),
  watermark_opacity: (v) => t('summary.watermarkOpacity', { value: v }),
  watermark_scale: (v) => t('summary.watermarkScale', { value: v }),
  priority: (v) => t('summary.priority', { value: v }),
  not_before: (v) => t('summary.notBefore', { time: formatTimestamp(v) }),
  invert: () => t('summary.invert'),
  equalize: () => t('summary.equalize'),
  frames: (v) => (v === 'first' ? t('summary.framesFirst') : t('summary.framesAll')),
  callback_url: (v) => t('summary.callback', { host: hostOf(v) }),
  dedupe: () => t('summary.dedupe'),
  variants: (v) => t('summary.variants', { list: v.split(',').join(', ') }),
};

/**
 * The operation controls. `listCompleted` (optional) returns a promise of completed images, to
 * offer as watermarks; the list is refreshed whenever the watermark picker gets focus.
 */
export function createControls(form, { listCompleted } = {}) {
  const summary = document.getElementById('ops-summary');
  const presetPicker = form.elements.preset;
  const presetHint = document.getElementById('preset-choice-hint');
  /** The presets offered as the main pipeline (from GET /api/presets). */
  let presets = [];

  /** The preset chosen as the main pipeline, or null ("these options"). */
  function chosenPreset() {
    const name = presetPicker.value;
    return (name && presets.find((p) => p.name === name)) || null;
  }

  /** A preset's pipeline as sent for the main output: `format: auto` cannot negotiate there, so it goes. */
  function mainPipeline(preset) {
    const value = preset.pipeline && typeof preset.pipeline === 'object' ? { ...preset.pipeline } : {};
    if (value.format === 'auto') delete value.format;
    return value;
  }

  const asksAuto = (preset) => preset?.pipeline && typeof preset.pipeline === 'object' && preset.pipeline.format === 'auto';

  function fields() {
    const out = [];
    const preset = chosenPreset();
    if (preset) {
      // The preset's pipeline replaces the operation fields; the upload's own fields still go.
      out.push(['pipeline', JSON.stringify(mainPipeline(preset))]);
      for (const name of VALUE_FIELDS) {
        if (!NOT_PIPELINE.has(name)) continue;
        const value = form.elements[name].value.trim();
        if (value !== '') out.push([name, name === 'not_before' ? new Date(value).toISOString() : value]);
      }
      for (const name of SWITCHES) {
        if (NOT_PIPELINE.has(name) && form.elements[name].checked) out.push([name, 'true']);
      }
      const variants = chosenVariants();
      if (variants.length) out.push(['variants', variants.join(',')]);
      return out;
    }
    for (const name of VALUE_FIELDS) {
      const value = form.elements[name].value.trim();
      if (value === '') continue;
      // A datetime-local is the browser's local time without a zone: send it as RFC 3339 UTC.
      out.push([name, name === 'not_before' ? new Date(value).toISOString() : value]);
    }
    for (const name of SWITCHES) {
      if (form.elements[name].checked) out.push([name, 'true']);
    }
    const variants = chosenVariants();
    if (variants.length) out.push(['variants', variants.join(',')]);
    return out;
  }

  /** The presets ticked under "Variants". */
  function chosenVariants() {
    return [...form.querySelectorAll('input[name="variants"]:checked')].map((input) => input.value);
  }

  /** The options as a pipeline JSON object in the flat form (what a preset stores). */
  function pipeline() {
    const preset = chosenPreset();
    if (preset) return structuredClone(preset.pipeline ?? {});
    const out = {};
    for (const [name, value] of fields()) {
      if (NOT_PIPELINE.has(name) || name === 'variants') continue;
      out[name] = value === 'true' ? true : NUMERIC.has(name) && Number.isFinite(Number(value)) ? Number(value) : value;
    }
    return out;
  }

  /** While a preset is the main pipeline, the operation inputs are disabled (the upload's own stay). */
  function applyPresetChoice() {
    const preset = chosenPreset();
    for (const name of [...VALUE_FIELDS, ...SWITCHES]) {
      if (NOT_PIPELINE.has(name)) continue;
      form.elements[name].disabled = Boolean(preset);
    }
    form.classList.toggle('ops--preset', Boolean(preset));
    if (asksAuto(preset)) localize(presetHint, 'ops.pipelineAutoHint');
    else localize(presetHint, 'ops.pipelineHint');
  }

  function updateSummary() {
    // A chosen preset that was deleted meanwhile: back to "these options".
    if (presetPicker.value && !chosenPreset()) presetPicker.value = '';
    applyPresetChoice();
    const preset = chosenPreset();
    const set = fields();
    const parts = [];
    if (preset) {
      parts.push(t('summary.preset', { name: preset.name }));
      if (asksAuto(preset)) parts.push(t('summary.presetAutoFormat'));
    }
    for (const [name, value] of set) if (name !== 'pipeline') parts.push(LABELS[name](value, form));
    summary.textContent = parts.length ? t('summary.next', { list: parts.join(' · ') }) : t('summary.none');
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
    const options = [h('option', { value: '', 'data-i18n': 'opt.watermark.none' }, t('opt.watermark.none'))];
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

  /** Offers `list` (GET /api/presets' presets) as main pipelines, keeping the choice while it exists. */
  function setPresets(list) {
    presets = Array.isArray(list) ? list : [];
    const chosen = presetPicker.value;
    const options = [h('option', { value: '', 'data-i18n': 'ops.pipelineOptions' }, t('ops.pipelineOptions'))];
    for (const { name } of presets) {
      options.push(h('option', { value: name, 'data-i18n': 'ops.pipelinePreset', 'data-i18n-vars': JSON.stringify({ name }) }, t('ops.pipelinePreset', { name })));
    }
    presetPicker.replaceChildren(...options);
    presetPicker.value = presets.some((p) => p.name === chosen) ? chosen : '';
    updateSummary();
  }

  return {
    fields,
    pipeline,
    setPresets,
    refreshWatermarks,
    /** Redraws the summary in the current language (after a switch). */
    refreshSummary: updateSummary,
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
