// The upload queue: client-side checks, a few XHR uploads at a time, one progress bar per file.

import { upload } from './api.js';
import { h, icon } from './dom.js';
import { formatBytes, formatPercent } from './format.js';
import { i18nAttrs, setPlainText, t } from './i18n.js';

export const DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024;
const CONCURRENT_UPLOADS = 3;
const DONE_ITEM_LINGER_MS = 4000;
const READABLE = new Set([
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/bmp', 'image/x-ms-bmp', 'image/tiff',
  'image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence', 'image/avif', 'image/jxl',
]);
const NOT_RASTER = new Set(['image/svg+xml']);

/**
 * Why a file cannot be uploaded, or null. The server sniffs the bytes and is the real judge; this
 * catches the obvious cases (a PDF, a video, a 2 GB file) without a round trip.
 */
export function rejectReason(file, maxBytes) {
  if (file.size === 0) return t('upload.empty');
  if (file.size > maxBytes) return t('upload.tooLarge', { size: formatBytes(file.size), max: formatBytes(maxBytes) });
  const type = (file.type || '').toLowerCase();
  if (type === '' || type === 'application/octet-stream' || READABLE.has(type)) return null;
  if (NOT_RASTER.has(type)) return t('upload.svg');
  if (type.startsWith('image/')) return null; // an unusual image type: let the server decide
  return t('upload.notImage', { type });
}

export function createUploader({ list, getFields, validateFields, onUploaded, announce }) {
  let maxBytes = DEFAULT_MAX_UPLOAD_BYTES;
  const queue = [];
  let active = 0;
  /** li → its item, for redrawing messages after a language switch. */
  const items = new WeakMap();

  function renderItem(file) {
    const vars = { name: file.name };
    const progress = h('progress', { class: 'upload-item__progress', max: '1', value: '0', ...i18nAttrs({ 'aria-label': 'upload.progressLabel' }, vars) });
    const status = h('span', { class: 'upload-item__status', text: t('upload.waiting') });
    const dismiss = h('button', { class: 'icon-button icon-button--small', type: 'button', ...i18nAttrs({ 'aria-label': 'upload.cancelLabel', title: 'action.cancel' }, vars) }, icon('close'));
    const li = h(
      'li',
      { class: 'upload-item', dataset: { state: 'queued', name: file.name } },
      icon('file', 'upload-item__icon'),
      h('div', { class: 'upload-item__body' },
        h('div', { class: 'upload-item__line' },
          h('span', { class: 'upload-item__name', text: file.name, title: file.name }),
          h('span', { class: 'upload-item__size', text: formatBytes(file.size) })),
        progress,
        status),
      dismiss,
    );
    list.prepend(li);
    const item = { li, progress, status, dismiss, message: () => t('upload.waiting') };
    items.set(li, item);
    return item;
  }

  /**
   * Shows an item's state; `message` returns its text, and is called again after a language
   * switch (so it translates and formats inside, e.g. () => t('upload.sent')).
   */
  function setState(item, state, message) {
    item.li.dataset.state = state;
    item.message = message;
    showMessage(item);
    item.status.setAttribute('role', state === 'error' ? 'alert' : 'status');
  }

  function showMessage(item) {
    setPlainText(item.status, item.message());
  }

  function finish(item, file) {
    const attrs = i18nAttrs({ 'aria-label': 'upload.dismissLabel', title: 'upload.dismiss' }, { name: file.name });
    for (const [name, value] of Object.entries(attrs)) item.dismiss.setAttribute(name, value);
  }

  function pump() {
    while (active < CONCURRENT_UPLOADS && queue.length) {
      const job = queue.shift();
      if (job.cancelled) continue;
      active += 1;
      start(job).finally(() => {
        active -= 1;
        pump();
      });
    }
  }

  async function start(job) {
    const { file, item, fields } = job;
    setState(item, 'uploading', () => t('upload.uploading', { percent: formatPercent(0) }));
    const request = upload(file, fields, (fraction) => {
      item.progress.value = fraction;
      if (fraction >= 1) setState(item, 'uploading', () => t('upload.sent'));
      else setState(item, 'uploading', () => t('upload.uploading', { percent: formatPercent(fraction) }));
    });
    job.abort = request.abort;
    try {
      const image = await request.promise;
      item.progress.value = 1;
      setState(item, 'done', () => (image?.duplicate ? t('upload.duplicate') : t('upload.queued')));
      finish(item, file);
      if (image && image.id) {
        item.li.dataset.imageId = image.id;
        onUploaded(image);
      }
      setTimeout(() => item.li.remove(), DONE_ITEM_LINGER_MS);
    } catch (err) {
      if (err.code === 'aborted') {
        item.li.remove();
        return;
      }
      item.progress.value = 1;
      // The server's own message, as it sent it; ours (no status) were translated when made.
      if (err.status) setState(item, 'error', () => t('upload.httpError', { message: err.message, status: String(err.status) }));
      else setState(item, 'error', () => err.message);
      finish(item, file);
    }
  }

  return {
    /** Redraws the items' messages in the current language (the labels follow data-i18n-attr). */
    refresh() {
      for (const li of list.children) {
        const item = items.get(li);
        if (item) showMessage(item);
      }
    },
    setMaxBytes(bytes) {
      if (Number.isFinite(bytes) && bytes > 0) maxBytes = bytes;
    },
    get maxBytes() {
      return maxBytes;
    },
    /** Queues files from the picker or a drop. */
    add(files) {
      const picked = Array.from(files);
      if (!picked.length) return;
      if (!validateFields()) {
        announce(t('upload.fixOptions'));
        return;
      }
      const fields = getFields(); // the options as they were when the files were chosen
      let queued = 0;
      for (const file of picked) {
        const item = renderItem(file);
        const job = { file, item, fields, cancelled: false, abort: null };
        item.dismiss.addEventListener('click', () => {
          job.cancelled = true;
          job.abort?.();
          item.li.remove();
        });
        const reason = rejectReason(file, maxBytes);
        if (reason) {
          item.progress.value = 1;
          const limit = maxBytes;
          setState(item, 'error', () => rejectReason(file, limit));
          finish(item, file);
          continue;
        }
        queue.push(job);
        queued += 1;
      }
      if (queued) announce(t('upload.started', { count: queued }));
      pump();
    },
  };
}
