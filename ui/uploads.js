// The upload queue: client-side checks, a few XHR uploads at a time, one progress bar per file.

import { upload } from './api.js';
import { h, icon } from './dom.js';
import { formatBytes } from './format.js';

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
  if (file.size === 0) return 'The file is empty.';
  if (file.size > maxBytes) return `Too large: ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}.`;
  const type = (file.type || '').toLowerCase();
  if (type === '' || type === 'application/octet-stream' || READABLE.has(type)) return null;
  if (NOT_RASTER.has(type)) return 'SVG drawings are not supported: upload a JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF or JPEG XL.';
  if (type.startsWith('image/')) return null; // an unusual image type: let the server decide
  return `Not an image (${type}): upload a JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF or JPEG XL.`;
}

export function createUploader({ list, getFields, validateFields, onUploaded, announce }) {
  let maxBytes = DEFAULT_MAX_UPLOAD_BYTES;
  const queue = [];
  let active = 0;

  function renderItem(file) {
    const progress = h('progress', { class: 'upload-item__progress', max: '1', value: '0', 'aria-label': `Upload progress of ${file.name}` });
    const status = h('span', { class: 'upload-item__status', text: 'Waiting…' });
    const dismiss = h('button', { class: 'icon-button icon-button--small', type: 'button', 'aria-label': `Cancel upload of ${file.name}`, title: 'Cancel' }, icon('close'));
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
    return { li, progress, status, dismiss };
  }

  function setState(item, state, message) {
    item.li.dataset.state = state;
    item.status.textContent = message;
    item.status.setAttribute('role', state === 'error' ? 'alert' : 'status');
  }

  function finish(item, file) {
    item.dismiss.setAttribute('aria-label', `Dismiss ${file.name}`);
    item.dismiss.title = 'Dismiss';
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
    setState(item, 'uploading', 'Uploading… 0%');
    const request = upload(file, fields, (fraction) => {
      item.progress.value = fraction;
      setState(item, 'uploading', fraction >= 1 ? 'Uploaded, waiting for the server…' : `Uploading… ${Math.round(fraction * 100)}%`);
    });
    job.abort = request.abort;
    try {
      const image = await request.promise;
      item.progress.value = 1;
      setState(item, 'done', image?.duplicate ? 'Already uploaded: this is the earlier image' : 'Uploaded — processing');
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
      setState(item, 'error', err.status ? `${err.message} (HTTP ${err.status})` : err.message);
      finish(item, file);
    }
  }

  return {
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
        announce('Fix the highlighted processing option first.');
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
          setState(item, 'error', reason);
          finish(item, file);
          continue;
        }
        queue.push(job);
        queued += 1;
      }
      if (queued) announce(`Uploading ${queued} file${queued === 1 ? '' : 's'}.`);
      pump();
    },
  };
}
