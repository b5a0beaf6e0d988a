// The HTTP API client: JSON requests with the token, 401 → token prompt → retry, XHR uploads with progress.

import { authHeaders, requestToken } from './auth.js';
import { t } from './i18n.js';

/** An API failure with the server's stable error code and human message. */
export class ApiError extends Error {
  /** `param`: the field a 400 names (`width`, `steps[0].width`), when the server says. */
  constructor(status, code, message, param = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

function errorFrom(status, body, statusText) {
  const err = body && typeof body === 'object' ? body.error : null;
  if (err && typeof err === 'object') {
    const param = typeof err.param === 'string' ? err.param : null;
    return new ApiError(status, err.code || `http_${status}`, err.message || statusText || `HTTP ${status}`, param);
  }
  return new ApiError(status, `http_${status}`, statusText || `HTTP ${status}`);
}

async function readError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  return errorFrom(res.status, body, res.statusText);
}

const MAX_AUTH_RETRIES = 3;

/** fetch() with the Bearer header; on 401 asks for a token and retries. Returns the Response. */
export async function send(path, { method = 'GET', body, headers = {} } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    let res;
    try {
      res = await fetch(path, { method, body, headers: { Accept: 'application/json', ...headers, ...authHeaders() } });
    } catch {
      throw new ApiError(0, 'network', t('api.unreachable'));
    }
    if (res.status === 401 && attempt < MAX_AUTH_RETRIES && (await requestToken())) continue;
    if (!res.ok) throw await readError(res);
    return res;
  }
}

async function json(path, options) {
  const res = await send(path, options);
  const text = res.status === 204 ? '' : await res.text();
  if (!text) return null; // e.g. a 202 or 204 without a body
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'bad_response', t('api.notJson'));
  }
}

const imagePath = (id) => `/api/images/${encodeURIComponent(id)}`;
const presetPath = (name) => `/api/presets/${encodeURIComponent(name)}`;

export const api = {
  stats: () => json('/api/stats'),
  list: ({ status = '', limit = 50, before = '' } = {}) => {
    const query = new URLSearchParams();
    if (status) query.set('status', status);
    if (limit) query.set('limit', String(limit));
    if (before) query.set('before', before);
    return json(`/api/images?${query}`);
  },
  get: (id) => json(imagePath(id)),
  retry: (id) => json(`${imagePath(id)}/retry`, { method: 'POST' }),
  cancel: (id) => json(`${imagePath(id)}/cancel`, { method: 'POST' }),
  deliveries: (id) => json(`${imagePath(id)}/deliveries`),
  /** Bulk actions by filter ({status, before, ids}); each call takes at most 10 000 rows. */
  retryMany: (filter) => json('/api/images/retry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(filter) }),
  removeMany: (filter) => json('/api/images/delete', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(filter) }),
  remove: (id) => json(imagePath(id), { method: 'DELETE' }),
  /** A signed, token-free URL of a variant: {url: "/v/<sig>/<id>/<preset>"} (404 when signing is off). */
  signedUrl: (id, preset) =>
    json(`${imagePath(id)}/signed-url`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ preset }) }),
  // Presets: named pipelines (SPEC "Variants, presets and signed delivery").
  presets: () => json('/api/presets'),
  /** Creates or replaces a preset; resolves to {created} (201 rather than 200). */
  async savePreset(name, pipeline) {
    const res = await send(presetPath(name), { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(pipeline) });
    return { created: res.status === 201 };
  },
  removePreset: (name) => json(presetPath(name), { method: 'DELETE' }),
  /** Fetches binary content (thumbnail, download) with the token, as a Blob plus its filename. */
  async blob(path) {
    const res = await send(path, { headers: { Accept: '*/*' } });
    return { blob: await res.blob(), filename: filenameFrom(res.headers.get('Content-Disposition')) };
  },
};

function filenameFrom(disposition) {
  if (!disposition) return '';
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1]);
    } catch {
      // fall through to the plain form
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)/i.exec(disposition);
  return plain ? (plain[1] ?? plain[2]).trim() : '';
}

/**
 * Uploads one file with the given operation fields as multipart/form-data. XHR rather than fetch,
 * because only XHR reports upload progress. Returns {promise, abort}; the promise resolves to the
 * image object of the 202 answer.
 */
export function upload(file, fields, onProgress) {
  let xhr = null;
  let aborted = false;
  const promise = new Promise((resolve, reject) => {
    const attempt = (n) => {
      xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/images');
      xhr.responseType = 'json';
      xhr.setRequestHeader('Accept', 'application/json');
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener('load', async () => {
        if (xhr.status === 401 && n < MAX_AUTH_RETRIES && (await requestToken())) {
          onProgress(0);
          attempt(n + 1);
          return;
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          const body = xhr.response;
          const image = body && Array.isArray(body.images) ? body.images[0] : body;
          // 200 rather than 202: `dedupe` found the same upload, nothing was queued.
          if (image && xhr.status === 200) image.duplicate = true;
          resolve(image);
        } else {
          reject(errorFrom(xhr.status, xhr.response, xhr.statusText));
        }
      });
      xhr.addEventListener('error', () => reject(new ApiError(0, 'network', t('api.connectionLost'))));
      xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', t('api.uploadCancelled'))));
      // Operation fields go before the file so the server knows the pipeline before the bytes.
      const form = new FormData();
      for (const [name, value] of fields) form.append(name, value);
      form.append('file', file, file.name);
      if (aborted) reject(new ApiError(0, 'aborted', t('api.uploadCancelled')));
      else xhr.send(form);
    };
    attempt(0);
  });
  return {
    promise,
    abort() {
      aborted = true;
      xhr?.abort();
    },
  };
}
