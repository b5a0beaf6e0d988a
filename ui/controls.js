// The operation controls: turns the form into the SPEC's flat multipart fields, sending only what the user set.

const VALUE_FIELDS = [
  'width', 'height', 'fit', 'gravity', 'focus', 'background', 'format', 'quality', 'rotate', 'flip', 'blur', 'sharpen', 'brightness', 'contrast',
  'saturation', 'hue', 'gamma', 'sepia', 'tint', 'kernel', 'pixelate',
];
const SWITCHES = ['grayscale', 'invert', 'equalize'];

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
  invert: () => 'invert',
  equalize: () => 'equalize',
};

export function createControls(form) {
  const summary = document.getElementById('ops-summary');

  function fields() {
    const out = [];
    for (const name of VALUE_FIELDS) {
      const value = form.elements[name].value.trim();
      if (value !== '') out.push([name, value]);
    }
    for (const name of SWITCHES) {
      if (form.elements[name].checked) out.push([name, 'true']);
    }
    return out;
  }

  function updateSummary() {
    const set = fields();
    summary.textContent = set.length
      ? `Next uploads: ${set.map(([name, value]) => LABELS[name](value)).join(' · ')}.`
      : "No options set: the server's default pipeline applies.";
    for (const input of form.querySelectorAll('input[type="number"], input[type="text"]')) {
      input.classList.toggle('field__input--invalid', !input.checkValidity());
    }
  }

  form.addEventListener('input', updateSummary);
  form.addEventListener('change', updateSummary);
  // The reset event fires before the form's values are cleared.
  form.addEventListener('reset', () => setTimeout(updateSummary));
  form.addEventListener('submit', (event) => event.preventDefault());
  updateSummary();

  return {
    fields,
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
