// The image table: one row per image, kept sorted newest first, updated in place as events arrive.

import { api } from './api.js';
import { currentToken } from './auth.js';
import { blurhashCanvas } from './blurhash.js';
import { h, icon } from './dom.js';
import { elapsed, formatBytes, formatDims, formatDuration, formatTimestamp, summarizePipeline } from './format.js';

const STATUS_LABELS = { pending: 'Pending', processing: 'Processing', completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' };

export function createTable({ tbody, emptyState, onRetry, onCancel, onDelete, onOpen, announce }) {
  /** id → {image, tr} for every row on the page. */
  const rows = new Map();
  /** id → {key, url} of thumbnails already fetched as blob: URLs. */
  const thumbs = new Map();
  let emptyText = 'No images yet. Drop some above.';

  const displayName = (image) => image.filename || `untitled ${image.id.slice(0, 8)}`;

  function newerFirst(a, b) {
    const ta = Date.parse(a.uploaded_at) || 0;
    const tb = Date.parse(b.uploaded_at) || 0;
    return tb - ta || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  }

  function downloadLink(image, kind) {
    const name = displayName(image);
    const href = image.links?.[kind] || `/api/images/${image.id}/${kind}`;
    const label = kind === 'processed' ? `Download processed ${name}` : `Download original ${name}`;
    const link = h(
      'a',
      { class: 'icon-button', href, download: '', 'aria-label': label, title: kind === 'processed' ? 'Download processed' : 'Download original', dataset: { action: `download-${kind}` } },
      icon(kind === 'processed' ? 'download' : 'original'),
    );
    // An <a download> cannot send the Authorization header: with a token, fetch the bytes instead.
    link.addEventListener('click', async (event) => {
      if (!currentToken()) return;
      event.preventDefault();
      try {
        const { blob, filename } = await api.blob(href);
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: filename || name, class: 'visually-hidden' });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      } catch (err) {
        announce(`Download failed: ${err.message}`);
      }
    });
    return link;
  }

  function actionButton(action, label, iconName, handler) {
    return h('button', { class: 'icon-button', type: 'button', 'aria-label': label, title: label.split(' ')[0], dataset: { action }, onclick: handler }, icon(iconName));
  }

  function thumbnailCell(image) {
    const cell = h('td', { class: 'cell-thumb', 'data-label': 'Preview' });
    const box = h('div', { class: 'thumb', dataset: { status: image.status } });
    cell.append(box);
    const cached = thumbs.get(image.id);
    const key = `${image.processed_at || ''}`;
    if (image.status === 'completed' && image.links?.thumbnail) {
      if (cached && cached.key === key && cached.url) {
        box.append(h('img', { src: cached.url, alt: '', width: '48', height: '48', decoding: 'async' }));
      } else {
        // The original's BlurHash stands in until the thumbnail arrives.
        box.append(blurhashCanvas(image.original?.blurhash) || icon('image', 'thumb__placeholder'));
        loadThumbnail(image, key);
      }
    } else {
      box.append(icon(image.status === 'failed' ? 'broken' : 'hourglass', 'thumb__placeholder'));
    }
    return cell;
  }

  async function loadThumbnail(image, key) {
    const entry = { key, url: null };
    const old = thumbs.get(image.id);
    if (old?.key === key) return; // already loading
    if (old?.url) URL.revokeObjectURL(old.url);
    thumbs.set(image.id, entry);
    try {
      const { blob } = await api.blob(image.links.thumbnail);
      if (thumbs.get(image.id) !== entry) return;
      entry.url = URL.createObjectURL(blob);
      const row = rows.get(image.id);
      const box = row?.tr.querySelector('.thumb');
      if (box && row.image.status === 'completed') {
        box.replaceChildren(h('img', { src: entry.url, alt: '', width: '48', height: '48', decoding: 'async' }));
      }
    } catch {
      if (thumbs.get(image.id) === entry) thumbs.delete(image.id);
    }
  }

  function renderRow(image) {
    const name = displayName(image);
    const original = image.original || {};
    const processed = image.processed || null;
    const nameCell = h(
      'td',
      { class: 'cell-name', 'data-label': 'Name' },
      // The name opens the detail view.
      h('button', { class: 'cell-name__file', type: 'button', text: name, title: `Details of ${name}`, dataset: { action: 'details' }, onclick: (event) => onOpen(image, event.currentTarget) }),
      h('div', { class: 'cell-name__meta', text: summarizePipeline(image.pipeline), title: `Uploaded ${formatTimestamp(image.uploaded_at)} · ${image.id}` }),
    );
    // A cancelled row's reason is its chip; only real errors are shown in red.
    if (image.error && image.status !== 'cancelled') nameCell.append(h('div', { class: 'cell-name__error', text: image.error }));

    const chipText = STATUS_LABELS[image.status] || image.status;
    const attempts = image.attempts > 1 ? ` · try ${image.attempts}` : '';
    const statusCell = h('td', { 'data-label': 'Status' }, h('span', { class: 'status-chip', dataset: { status: image.status } }, h('span', { class: 'status-chip__dot', 'aria-hidden': 'true' }), `${chipText}${attempts}`));

    const sizeCell = h('td', { class: 'cell-num', 'data-label': 'Size' }, formatBytes(original.bytes));
    if (processed) sizeCell.append(h('span', { class: 'arrow', 'aria-label': 'becomes' }, ' → '), formatBytes(processed.bytes));

    const dimsCell = h('td', { class: 'cell-num', 'data-label': 'Dimensions' }, formatDims(original) || '—');
    if (processed && formatDims(processed)) dimsCell.append(h('span', { class: 'arrow', 'aria-label': 'becomes' }, ' → '), formatDims(processed));

    let took = '—';
    if (image.status === 'processing') took = 'running…';
    else if (image.processed_at && image.started_at) took = formatDuration(elapsed(image.started_at, image.processed_at));
    const timeCell = h('td', { class: 'cell-num', 'data-label': 'Time', title: image.processed_at ? `Finished ${formatTimestamp(image.processed_at)}` : '' }, took);

    const actions = h('div', { class: 'row-actions' }, downloadLink(image, 'original'));
    if (image.status === 'completed') actions.append(downloadLink(image, 'processed'));
    if (image.status === 'pending' || image.status === 'processing') {
      actions.append(actionButton('cancel', `Cancel ${name}`, 'cancel', () => onCancel(image)));
    }
    if (image.status === 'completed' || image.status === 'failed' || image.status === 'cancelled') {
      actions.append(actionButton('retry', `Retry ${name}`, 'retry', () => onRetry(image)));
    }
    actions.append(actionButton('delete', `Delete ${name}`, 'delete', () => onDelete(image)));
    const actionsCell = h('td', { class: 'cell-actions', 'data-label': 'Actions' }, actions);

    return h(
      'tr',
      { class: 'image-row', dataset: { id: image.id, status: image.status, processedAt: image.processed_at || '' } },
      thumbnailCell(image),
      nameCell,
      statusCell,
      sizeCell,
      dimsCell,
      timeCell,
      actionsCell,
    );
  }

  function firstRowAtOrAfter(image) {
    for (const tr of tbody.children) {
      const other = rows.get(tr.dataset.id);
      if (other && other.image.id !== image.id && newerFirst(image, other.image) < 0) return tr;
    }
    return null;
  }

  function updateEmpty() {
    emptyState.hidden = rows.size > 0;
    emptyState.textContent = emptyText;
  }

  function upsert(image) {
    const existing = rows.get(image.id);
    const tr = renderRow(image);
    if (existing) {
      // Keep keyboard focus on the same control when a row is redrawn under it.
      const focused = existing.tr.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      existing.tr.replaceWith(tr);
      rows.set(image.id, { image, tr });
      if (Date.parse(existing.image.uploaded_at) !== Date.parse(image.uploaded_at)) {
        tr.remove();
        tbody.insertBefore(tr, firstRowAtOrAfter(image));
      }
      if (focused) (tr.querySelector(`[data-action="${focused}"]`) || tr.querySelector('[data-action="delete"]'))?.focus();
    } else {
      rows.set(image.id, { image, tr });
      tbody.insertBefore(tr, firstRowAtOrAfter(image));
    }
    updateEmpty();
  }

  function remove(id) {
    const row = rows.get(id);
    if (!row) return;
    const hadFocus = row.tr.contains(document.activeElement);
    const next = row.tr.nextElementSibling || row.tr.previousElementSibling;
    row.tr.remove();
    rows.delete(id);
    const thumb = thumbs.get(id);
    if (thumb?.url) URL.revokeObjectURL(thumb.url);
    thumbs.delete(id);
    if (hadFocus) (next?.querySelector('[data-action="delete"]') || document.getElementById('images-title'))?.focus();
    updateEmpty();
  }

  return {
    upsert,
    remove,
    has: (id) => rows.has(id),
    statusOf: (id) => rows.get(id)?.image.status,
    get size() {
      return rows.size;
    },
    /** The oldest image on the page: events about anything older belong to a page not loaded yet. */
    oldest() {
      let oldest = null;
      for (const { image } of rows.values()) if (!oldest || newerFirst(image, oldest) > 0) oldest = image;
      return oldest;
    },
    isOlderThanLoaded(image) {
      const oldest = this.oldest();
      return Boolean(oldest) && newerFirst(image, oldest) > 0;
    },
    /** Replaces all rows with a fresh first page (after a filter change or an event-stream reconnect). */
    replaceAll(images) {
      const keep = new Set(images.map((image) => image.id));
      for (const id of [...rows.keys()]) if (!keep.has(id)) remove(id);
      for (const image of images) upsert(image);
      updateEmpty();
    },
    setEmptyText(text) {
      emptyText = text;
      updateEmpty();
    },
  };
}
