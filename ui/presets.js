// Presets: named pipelines the server keeps (SPEC "Variants, presets and signed delivery").
// The Presets card lists them, saves the upload options as one, edits one's JSON and deletes
// one; the upload form offers them as variants (one checkbox each).

import { api } from './api.js';
import { h } from './dom.js';
import { formatTimestamp, summarizePipeline } from './format.js';
import { localize, setPlainText, t } from './i18n.js';

const $ = (id) => document.getElementById(id);
const NAME = /^[a-z0-9_-]{1,64}$/;

/** A stored pipeline in a line: the steps form as in the list, the flat form as its fields. */
function summary(pipeline) {
  if (!pipeline || typeof pipeline !== 'object' || Array.isArray(pipeline.steps)) return summarizePipeline(pipeline);
  const parts = Object.entries(pipeline).map(([key, value]) => (value === true ? key : `${key} ${value}`));
  return parts.length ? parts.join(' · ') : t('pipeline.empty');
}

/**
 * `pipeline()` returns the upload options as a pipeline object (the new preset's starting JSON);
 * `onChange(presets)` runs after every load, e.g. to redraw the options' summary.
 */
export function createPresets({ pipeline, announce, onChange }) {
  let presets = [];
  let failure = null;
  /** The open editor: {name, isNew, opener}. */
  let editing = null;

  const dialog = $('preset-dialog');
  const nameInput = $('preset-name');
  const json = $('preset-json');
  const error = $('preset-error');

  async function load() {
    try {
      const answer = await api.presets();
      presets = (answer?.presets || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      failure = null;
    } catch (err) {
      failure = err;
    }
    render();
    onChange?.(presets);
  }

  function render() {
    const empty = $('presets-empty');
    if (failure) localize(empty, 'presets.loadError', { message: failure.message });
    else if (!presets.length) localize(empty, 'presets.none');
    empty.hidden = !failure && presets.length > 0;
    $('preset-list').replaceChildren(...presets.map(renderPreset));
    renderChoices();
  }

  function renderPreset(preset) {
    const { name } = preset;
    const edit = h('button', { class: 'button button--text', type: 'button', text: t('presets.edit'), 'aria-label': t('presets.editLabel', { name }), dataset: { action: 'edit-preset' } });
    edit.addEventListener('click', () => openEditor({ name, pipeline: preset.pipeline, isNew: false, opener: edit }));
    const remove = h('button', { class: 'button button--text button--danger', type: 'button', text: t('action.delete'), 'aria-label': t('presets.deleteLabel', { name }), dataset: { action: 'delete-preset' } });
    remove.addEventListener('click', () => deletePreset(name));
    return h(
      'li',
      { class: 'preset', dataset: { name } },
      h('div', { class: 'preset__body' },
        h('code', { class: 'preset__name', text: name }),
        h('div', { class: 'preset__summary', text: summary(preset.pipeline) }),
        preset.updated_at ? h('div', { class: 'preset__meta', text: t('presets.updated', { time: formatTimestamp(preset.updated_at) }) }) : null),
      h('div', { class: 'preset__actions' }, edit, remove),
    );
  }

  /** The upload form's "Variants": one checkbox per preset, keeping what was ticked. */
  function renderChoices() {
    const box = $('variant-choices');
    const ticked = new Set([...box.querySelectorAll('input')].filter((input) => input.checked).map((input) => input.value));
    if (!presets.length) {
      box.replaceChildren(h('p', { class: 'ops__hint', text: failure ? t('presets.unavailable') : t('variants.none') }));
      return;
    }
    box.replaceChildren(
      ...presets.map(({ name }) => {
        const input = h('input', { class: 'variant-choice__input', type: 'checkbox', name: 'variants', value: name });
        input.checked = ticked.has(name);
        return h('label', { class: 'variant-choice' }, input, h('span', { text: name }));
      }),
    );
  }

  function showError(text) {
    setPlainText(error, text);
  }

  function openEditor({ name = '', pipeline: value = {}, isNew, opener }) {
    editing = { name, isNew, opener };
    localize($('preset-dialog-title'), isNew ? 'presets.newTitle' : 'presets.editTitle', isNew ? undefined : { name });
    nameInput.value = name;
    nameInput.readOnly = !isNew;
    json.value = JSON.stringify(value ?? {}, null, 2);
    showError('');
    if (!dialog.open) dialog.showModal();
    (isNew ? nameInput : json).focus();
  }

  async function save(event) {
    event.preventDefault();
    if (!editing) return;
    const name = nameInput.value.trim();
    if (!NAME.test(name)) {
      showError(t('presets.badName'));
      nameInput.focus();
      return;
    }
    let value;
    try {
      value = JSON.parse(json.value);
    } catch (err) {
      showError(t('presets.badJson', { message: err.message }));
      json.focus();
      return;
    }
    if (editing.isNew && presets.some((p) => p.name === name) && !window.confirm(t('presets.confirmReplace', { name }))) return;
    try {
      const { created } = await api.savePreset(name, value);
      dialog.close();
      announce(t(created ? 'presets.created' : 'presets.saved', { name }));
      await load();
      // The list was redrawn under an edit's opener: go to the same preset's button.
      if (!document.activeElement || document.activeElement === document.body) {
        document.querySelector(`#preset-list li[data-name="${CSS.escape(name)}"] [data-action="edit-preset"]`)?.focus();
      }
    } catch (err) {
      // A 400 names the field at fault (`width`, `steps[0].width`): say which, and go there.
      showError(err.param ? t('presets.fieldError', { message: err.message, param: err.param }) : t('presets.saveError', { message: err.message }));
      (err.param === 'name' ? nameInput : json).focus();
    }
  }

  async function deletePreset(name) {
    if (!window.confirm(t('presets.confirmDelete', { name }))) return;
    try {
      await api.removePreset(name);
      announce(t('presets.deleted', { name }));
    } catch (err) {
      if (err.status !== 404) announce(t('presets.deleteError', { name, message: err.message }));
    }
    await load();
    (document.querySelector('#preset-list [data-action="delete-preset"]') || $('presets-title')).focus();
  }

  const fromOptions = (event) => openEditor({ pipeline: pipeline(), isNew: true, opener: event.currentTarget });
  $('save-preset').addEventListener('click', fromOptions);
  $('new-preset').addEventListener('click', fromOptions);
  $('preset-form').addEventListener('submit', save);
  $('preset-cancel').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    editing?.opener?.focus();
    editing = null;
  });

  return {
    load,
    /** Redraws the list in the current language (after a switch). */
    refresh: render,
    get names() {
      return presets.map((p) => p.name);
    },
  };
}
