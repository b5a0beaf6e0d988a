// The UI's languages: every user-visible string of ui/*.js and ui/index.html lives here.
//
// Adding a string (e.g. for a new page):
//   1. add the key to BOTH `en` and `pt-BR` below, in the section of its page (keys are flat,
//      "section.name"; a new section is just a new prefix);
//   2. in JavaScript: t('section.name', { var: value }) — `{var}` in the text is replaced; a text
//      that shows a count is an object of plural forms ({ one, other }) picked by `count`;
//      in index.html: data-i18n="section.name" on the element holding the text (its English text
//      stays in the HTML as written in `en`), data-i18n-attr="aria-label:key;title:key2" for
//      attributes; elements made in JavaScript may carry the same attributes (and
//      data-i18n-vars='{"name":"…"}') so a language switch re-translates them;
//   3. run `node tests/ui/i18n-check.mjs` (scripts/test-ui runs it first): it fails when the two
//      catalogues' keys or {placeholders} differ, a key used in ui/ is missing, a key is unused,
//      or index.html has text without data-i18n. Keys must be written out in full ('status.failed',
//      never `status.${x}`) so the check can see them: use a map of literal keys for a lookup.
// Messages from the server (its `error` texts) are shown as they come, untranslated.

export const LANGUAGES = [
  // Each language's name in itself, shown in the switch whatever the current language.
  { code: 'en', name: 'English' },
  { code: 'pt-BR', name: 'Português' },
];

const STORAGE_KEY = 'image-processor.language';

export const CATALOGUES = {
  en: {
    // ---- page, header
    'app.title': 'Image processor',
    'app.description': 'Upload images, choose operations, and watch them being processed live.',
    'app.skipLink': 'Skip to the image list',
    'language.label': 'Language',
    'live.connecting': 'Connecting…',
    'live.live': 'Live',
    'live.offline': 'Offline, retrying',
    'token.button': 'Set access token',
    'token.buttonTitle': 'Access token',

    // ---- token dialog
    'token.title': 'Access token',
    'token.label': 'Token',
    'token.forget': 'Forget token',
    'token.save': 'Save',
    'token.reasonAsked': 'The token is sent as a Bearer header on every API call. It is kept in this browser only.',
    'token.reasonRejected': 'The server rejected the saved token. Enter a valid one to continue.',
    'token.reasonRequired': 'This server requires an API token. It is kept in this browser only.',

    // ---- upload card
    'upload.title': 'Upload images',
    'upload.dropText': 'Drag and drop images here, or',
    'upload.pick': 'Choose files',
    'upload.hint': 'JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF or JPEG XL · up to {size} each · several at once',
    'upload.listLabel': 'Uploads in progress',
    'upload.progressLabel': 'Upload progress of {name}',
    'upload.waiting': 'Waiting…',
    'upload.uploading': 'Uploading… {percent}',
    'upload.sent': 'Uploaded, waiting for the server…',
    'upload.duplicate': 'Already uploaded: this is the earlier image',
    'upload.queued': 'Uploaded — processing',
    'upload.httpError': '{message} (HTTP {status})',
    'upload.cancelLabel': 'Cancel upload of {name}',
    'upload.dismiss': 'Dismiss',
    'upload.dismissLabel': 'Dismiss {name}',
    'upload.fixOptions': 'Fix the highlighted processing option first.',
    'upload.started': { one: 'Uploading {count} file.', other: 'Uploading {count} files.' },
    'upload.empty': 'The file is empty.',
    'upload.tooLarge': 'Too large: {size}; the limit is {max}.',
    'upload.svg': 'SVG drawings are not supported: upload a JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF or JPEG XL.',
    'upload.notImage': 'Not an image ({type}): upload a JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF or JPEG XL.',

    // ---- processing options
    'ops.legend': 'Processing options',
    'ops.note': "(applied to the next uploads; empty fields use the server's defaults)",
    'ops.width': 'Width (px)',
    'ops.height': 'Height (px)',
    'ops.fit': 'Fit',
    'ops.gravity': 'Gravity',
    'ops.focus': 'Focus (fx,fy)',
    'ops.focusPlaceholder': 'none, e.g. 0.3,0.4',
    'ops.background': 'Background',
    'ops.backgroundPlaceholder': 'none, e.g. ffffff',
    'ops.format': 'Format',
    'ops.priority': 'Priority (−100–100)',
    'ops.notBefore': 'Not before',
    'ops.frames': 'Animation frames',
    'ops.callback': 'Webhook URL (told when done)',
    'ops.callbackPlaceholder': 'https://example.com/hook',
    'ops.dedupe': 'Skip duplicates',
    'ops.quality': 'Quality (1–100)',
    'ops.rotate': 'Rotate',
    'ops.flip': 'Flip',
    'ops.blur': 'Blur (sigma)',
    'ops.sharpen': 'Sharpen',
    'ops.brightness': 'Brightness (−100–100)',
    'ops.contrast': 'Contrast (−100–100)',
    'ops.grayscale': 'Grayscale',
    'ops.colourGroup': 'Colour and filters',
    'ops.saturation': 'Saturation (−100–100)',
    'ops.hue': 'Hue (−180–180°)',
    'ops.gamma': 'Gamma (0.1–10)',
    'ops.sepia': 'Sepia (0–100)',
    'ops.tint': 'Tint (RRGGBB)',
    'ops.tintPlaceholder': 'none, e.g. ff8800',
    'ops.kernel': 'Kernel',
    'ops.pixelate': 'Pixelate (2–200 px)',
    'ops.watermark': 'Watermark',
    'ops.watermarkPlace': 'Watermark place',
    'ops.watermarkOpacity': 'Watermark opacity (0–100)',
    'ops.watermarkScale': 'Watermark width (1–100 %)',
    'ops.invert': 'Invert',
    'ops.equalize': 'Equalize',
    'ops.watermarkHint': 'A watermark is one of your completed images, drawn over each new upload.',
    'ops.reset': 'Reset options',
    'ops.auto': 'auto',
    'ops.default': 'default',
    'ops.none': 'none',
    'ops.unchanged': 'unchanged',
    // the options of the select fields
    'opt.fit.default': 'default (contain)',
    'opt.fit.contain': 'contain',
    'opt.fit.cover': 'cover',
    'opt.fit.fill': 'fill',
    'opt.fit.pad': 'pad',
    'opt.gravity.default': 'default (center)',
    'opt.gravity.smart': 'smart (cover)',
    'opt.gravity.center': 'center',
    'opt.gravity.north': 'north',
    'opt.gravity.south': 'south',
    'opt.gravity.east': 'east',
    'opt.gravity.west': 'west',
    'opt.gravity.northeast': 'northeast',
    'opt.gravity.northwest': 'northwest',
    'opt.gravity.southeast': 'southeast',
    'opt.gravity.southwest': 'southwest',
    'opt.watermarkGravity.default': 'default (southeast)',
    'opt.format.keep': 'keep original',
    'opt.frames.default': 'default (all)',
    'opt.frames.all': 'all',
    'opt.frames.first': 'first only',
    'opt.rotate.none': 'none',
    'opt.flip.none': 'none',
    'opt.flip.h': 'horizontal',
    'opt.flip.v': 'vertical',
    'opt.kernel.none': 'none',
    'opt.kernel.edge': 'edge',
    'opt.kernel.sobel': 'sobel',
    'opt.kernel.outline': 'outline',
    'opt.kernel.emboss': 'emboss',
    'opt.kernel.sharpen': 'sharpen',
    'opt.kernel.box': 'box',
    'opt.kernel.gaussian': 'gaussian',
    'opt.watermark.none': 'none',
    // the summary of the options set
    'summary.none': "No options set: the server's default pipeline applies.",
    'summary.next': 'Next uploads: {list}.',
    'summary.preset': 'preset {name}',
    'summary.presetAutoFormat': 'format: kept (the preset asks for auto)',
    'ops.pipeline': 'Pipeline',
    'ops.pipelineOptions': 'these options',
    'ops.pipelinePreset': 'preset {name}',
    'ops.pipelineHint': 'Choose a preset to process the next uploads with it instead of the options below.',
    'ops.pipelineAutoHint': 'This preset asks for format “auto”, which the main result cannot negotiate: uploads keep their own format.',
    'summary.width': 'width {value}px',
    'summary.height': 'height {value}px',
    'summary.fit': 'fit {value}',
    'summary.gravity': 'gravity {value}',
    'summary.focus': 'focus {value}',
    'summary.background': 'background #{value}',
    'summary.format': 'as {value}',
    'summary.quality': 'quality {value}',
    'summary.rotate': 'rotate {value}°',
    'summary.flipH': 'flip horizontally',
    'summary.flipV': 'flip vertically',
    'summary.blur': 'blur {value}',
    'summary.sharpen': 'sharpen {value}',
    'summary.brightness': 'brightness {value}',
    'summary.contrast': 'contrast {value}',
    'summary.grayscale': 'grayscale',
    'summary.saturation': 'saturation {value}',
    'summary.hue': 'hue {value}°',
    'summary.gamma': 'gamma {value}',
    'summary.sepia': 'sepia {value}',
    'summary.tint': 'tint #{value}',
    'summary.kernel': '{value} kernel',
    'summary.pixelate': 'pixelate {value}px',
    'summary.watermark': 'watermark “{name}”',
    'summary.watermarkUnnamed': 'image',
    'summary.watermarkGravity': 'watermark {value}',
    'summary.watermarkOpacity': 'watermark opacity {value}',
    'summary.watermarkScale': 'watermark width {value}%',
    'summary.priority': 'priority {value}',
    'summary.notBefore': 'not before {time}',
    'summary.invert': 'invert',
    'summary.equalize': 'equalize',
    'summary.framesFirst': 'first frame only',
    'summary.framesAll': 'every frame',
    'summary.callback': 'webhook to {host}',
    'summary.dedupe': 'skip duplicates',

    // ---- dashboard
    'dash.title': 'Queue and throughput',
    'dash.depth': 'In queue',
    'dash.oldest': 'Oldest waiting',
    'dash.hour': 'Completed, last hour',
    'dash.failed': 'Failed, last hour',
    'dash.chartLabel': 'Jobs per minute over the last hour',
    'dash.chartSummary': 'Jobs per minute over the last hour: {completed} completed, {failed} failed, at most {peak} in one minute.',
    'dash.minute': '{time}: {completed} completed, {failed} failed',
    'dash.caption': 'Jobs per minute, last 60 minutes',
    'dash.legendCompleted': 'completed',
    'dash.legendFailed': 'failed',
    'dash.waitNone': 'none',

    // ---- image list
    'images.title': 'Images',
    'images.caption': 'Uploaded images, newest first',
    'stats.inQueue': '{count} in queue',
    'stats.oldest': 'oldest waiting {seconds} s',
    'stats.lastMinute': { one: '{count} completed in the last minute', other: '{count} completed in the last minute' },
    'filter.label': 'Filter by status',
    'filter.all': 'All',
    'filter.pending': 'Pending',
    'filter.processing': 'Processing',
    'filter.completed': 'Completed',
    'filter.failed': 'Failed',
    'filter.cancelled': 'Cancelled',
    'bulk.label': 'Bulk actions',
    'bulk.retry': 'Retry all failed',
    'bulk.delete': 'Delete failed',
    'bulk.retried': { one: 'Retrying {count} failed image.', other: 'Retrying {count} failed images.' },
    'bulk.deleted': { one: 'Deleted {count} failed image.', other: 'Deleted {count} failed images.' },
    'bulk.error': { one: 'Could not finish: {message} ({count} done).', other: 'Could not finish: {message} ({count} done).' },
    'bulk.confirmDelete': {
      one: 'Delete the {count} failed image? This cannot be undone.',
      other: 'Delete all {count} failed images? This cannot be undone.',
    },
    'status.pending': 'Pending',
    'status.processing': 'Processing',
    'status.completed': 'Completed',
    'status.failed': 'Failed',
    'status.cancelled': 'Cancelled',
    'table.preview': 'Preview',
    'table.name': 'Name',
    'table.status': 'Status',
    'table.size': 'Size',
    'table.dimensions': 'Dimensions',
    'table.time': 'Processing time',
    'table.timeShort': 'Time',
    'table.actions': 'Actions',
    'table.untitled': 'untitled {id}',
    'table.details': 'Details of {name}',
    'table.uploadedAt': 'Uploaded {time} · {id}',
    'table.finishedAt': 'Finished {time}',
    'table.attempt': 'try {count}',
    'table.becomes': 'becomes',
    'table.running': 'running…',
    'table.downloadProcessed': 'Download processed',
    'table.downloadProcessedLabel': 'Download processed {name}',
    'table.downloadOriginal': 'Download original',
    'table.downloadOriginalLabel': 'Download original {name}',
    'table.downloadFailed': 'Download failed: {message}',
    'table.loadMore': 'Load more',
    'action.cancel': 'Cancel',
    'action.cancelLabel': 'Cancel {name}',
    'action.retry': 'Retry',
    'action.retryLabel': 'Retry {name}',
    'action.delete': 'Delete',
    'action.deleteLabel': 'Delete {name}',
    'action.retried': 'Processing {name} again.',
    'action.retryError': 'Could not retry {name}: {message}',
    'action.cancelled': 'Cancelled {name}.',
    'action.alreadyFinished': '{name} had already finished.',
    'action.cancelError': 'Could not cancel {name}: {message}',
    'action.deleted': 'Deleted {name}.',
    'action.deleteError': 'Could not delete {name}: {message}',
    'empty.loading': 'Loading…',
    'empty.none': 'No images yet. Drop some above.',
    'empty.pending': 'No pending images.',
    'empty.processing': 'No processing images.',
    'empty.completed': 'No completed images.',
    'empty.failed': 'No failed images.',
    'empty.cancelled': 'No cancelled images.',
    'list.loadError': 'Could not load images: {message}',
    'list.refreshError': 'Could not refresh the list: {message}',
    'list.moreError': 'Could not load more: {message}',
    // the screen reader's sentence about images that finished
    'announce.untitled': 'an untitled image',
    'announce.oneCompleted': '{name} completed',
    'announce.manyCompleted': { one: '{count} image completed', other: '{count} images completed' },
    'announce.oneFailed': '{name} failed: {error}',
    'announce.noReason': 'no reason given',
    'announce.manyFailed': { one: '{count} image failed', other: '{count} images failed' },

    // ---- detail view
    'detail.close': 'Close',
    'detail.originalAlt': 'The original',
    'detail.resultAlt': 'The result',
    'detail.original': 'Original',
    'detail.result': 'Result',
    'detail.pipeline': 'Pipeline',
    'detail.pipelineLabel': 'The effective pipeline, as JSON',
    'detail.deliveries': 'Webhook deliveries',
    'detail.deliveriesError': 'Could not load the deliveries.',
    'detail.deliveriesNone': 'None: no webhook URL for this image.',
    'detail.status': 'Status',
    'detail.frames': { one: '{count} frame', other: '{count} frames' },
    'detail.compareLabel': 'How to compare',
    'detail.sideBySide': 'Side by side',
    'detail.slider': 'Slider',
    'detail.sliderLabel': 'Divider between the original (left) and the result (right)',
    'detail.sliderValue': '{original} original, {result} result',
    'detail.dominantColour': 'Dominant colour',
    'detail.sha256': 'SHA-256',
    'detail.blurhash': 'BlurHash',
    'detail.uploaded': 'Uploaded',
    'detail.finished': 'Finished',
    'detail.make': 'Camera make',
    'detail.model': 'Camera model',
    'detail.lens': 'Lens',
    'detail.taken': 'Taken',
    'detail.exposure': 'Exposure',
    'detail.aperture': 'Aperture',
    'detail.iso': 'ISO',
    'detail.focalLength': 'Focal length',
    'detail.orientation': 'EXIF orientation',
    'detail.location': 'Location',
    'detail.gpsRecorded': 'recorded in the file (never shown or copied)',
    'detail.gpsNone': 'none',
    'delivery.state.pending': 'pending',
    'delivery.state.delivering': 'delivering',
    'delivery.state.delivered': 'delivered',
    'delivery.state.failed': 'failed',
    'delivery.outcome.delivered': 'delivered',
    'delivery.outcome.retried': 'retried',
    'delivery.outcome.failed': 'failed',
    'delivery.outcome.refused': 'refused',

    // ---- presets and variants
    'presets.title': 'Presets',
    'presets.new': 'New preset from the options',
    'presets.intro': 'A preset is a named pipeline. Uploads can ask for variants made with presets; each variant has its own link.',
    'presets.saveOptions': 'Save as preset…',
    'presets.newTitle': 'New preset',
    'presets.editTitle': 'Edit preset {name}',
    'presets.name': 'Name',
    'presets.nameHint': 'Lower-case letters, digits, _ and -, up to 64 characters.',
    'presets.pipeline': 'Pipeline (JSON)',
    'presets.save': 'Save preset',
    'presets.loadError': 'Could not load the presets: {message}',
    'presets.none': 'No presets yet.',
    'presets.unavailable': 'The presets could not be loaded.',
    'presets.edit': 'Edit',
    'presets.editLabel': 'Edit preset {name}',
    'presets.deleteLabel': 'Delete preset {name}',
    'presets.updated': 'Updated {time}',
    'presets.badName': 'A name uses only lower-case letters, digits, _ and -, 1 to 64 of them.',
    'presets.badJson': 'Not valid JSON: {message}',
    'presets.confirmReplace': 'A preset named {name} exists. Replace it?',
    'presets.created': 'Preset {name} created.',
    'presets.saved': 'Preset {name} saved.',
    'presets.fieldError': '{message} (field {param})',
    'presets.saveError': 'Could not save: {message}',
    'presets.confirmDelete': 'Delete preset {name}? Variants already made are kept.',
    'presets.deleted': 'Preset {name} deleted.',
    'presets.deleteError': 'Could not delete preset {name}: {message}',
    'variants.legend': 'Variants',
    'variants.hint': 'Each preset ticked here also makes a variant of every upload, kept beside the result.',
    'variants.none': 'No presets yet: “Save as preset…” below makes one from these options.',
    'variants.listLabel': 'Variants of {name}',
    'variants.download': 'Download the {preset} variant',
    'variants.downloadShort': 'Download',
    'variants.copySigned': 'Copy signed URL',
    'variants.copySignedLabel': 'Copy signed URL of the {preset} variant',
    'variants.copied': 'Signed URL copied.',
    'variants.copiedLink': 'Copied:',
    'variants.copyByHand': 'The clipboard is not available: copy the link by hand.',
    'variants.signError': 'No signed URL: {message}',
    'summary.variants': 'variants {list}',
    'detail.variants': 'Variants',
    'detail.variantsNone': 'None: no preset was asked for.',

    // ---- pipeline summaries in the list
    'pipeline.default': 'default pipeline',
    'pipeline.empty': 'no operations',
    'pipeline.auto': 'auto',

    // ---- errors made in the browser (the server's own messages are shown as sent)
    'api.unreachable': 'The server cannot be reached.',
    'api.notJson': 'The server sent a response that is not JSON.',
    'api.connectionLost': 'Upload failed: the connection was lost.',
    'api.uploadCancelled': 'Upload cancelled.',
    'common.cancel': 'Cancel',
  },

  'pt-BR': {
    // ---- página, cabeçalho
    'app.title': 'Processador de imagens',
    'app.description': 'Envie imagens, escolha as operações e acompanhe o processamento ao vivo.',
    'app.skipLink': 'Pular para a lista de imagens',
    'language.label': 'Idioma',
    'live.connecting': 'Conectando…',
    'live.live': 'Ao vivo',
    'live.offline': 'Sem conexão, tentando de novo',
    'token.button': 'Definir token de acesso',
    'token.buttonTitle': 'Token de acesso',

    // ---- diálogo do token
    'token.title': 'Token de acesso',
    'token.label': 'Token',
    'token.forget': 'Esquecer token',
    'token.save': 'Salvar',
    'token.reasonAsked': 'O token é enviado como cabeçalho Bearer em toda chamada à API. Ele fica guardado só neste navegador.',
    'token.reasonRejected': 'O servidor recusou o token salvo. Informe um token válido para continuar.',
    'token.reasonRequired': 'Este servidor exige um token de API. Ele fica guardado só neste navegador.',

    // ---- envio
    'upload.title': 'Enviar imagens',
    'upload.dropText': 'Arraste e solte imagens aqui ou',
    'upload.pick': 'Escolher arquivos',
    'upload.hint': 'JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF ou JPEG XL · até {size} cada · vários de uma vez',
    'upload.listLabel': 'Envios em andamento',
    'upload.progressLabel': 'Progresso do envio de {name}',
    'upload.waiting': 'Aguardando…',
    'upload.uploading': 'Enviando… {percent}',
    'upload.sent': 'Enviado, aguardando o servidor…',
    'upload.duplicate': 'Já enviada: esta é a imagem anterior',
    'upload.queued': 'Enviado — processando',
    'upload.httpError': '{message} (HTTP {status})',
    'upload.cancelLabel': 'Cancelar o envio de {name}',
    'upload.dismiss': 'Fechar',
    'upload.dismissLabel': 'Fechar o aviso de {name}',
    'upload.fixOptions': 'Corrija primeiro a opção de processamento destacada.',
    'upload.started': { one: 'Enviando {count} arquivo.', other: 'Enviando {count} arquivos.' },
    'upload.empty': 'O arquivo está vazio.',
    'upload.tooLarge': 'Grande demais: {size}; o limite é {max}.',
    'upload.svg': 'Desenhos SVG não são aceitos: envie um JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF ou JPEG XL.',
    'upload.notImage': 'Não é uma imagem ({type}): envie um JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF ou JPEG XL.',

    // ---- opções de processamento
    'ops.legend': 'Opções de processamento',
    'ops.note': '(valem para os próximos envios; campos vazios usam os padrões do servidor)',
    'ops.width': 'Largura (px)',
    'ops.height': 'Altura (px)',
    'ops.fit': 'Ajuste',
    'ops.gravity': 'Âncora',
    'ops.focus': 'Foco (fx,fy)',
    'ops.focusPlaceholder': 'nenhum, ex.: 0.3,0.4',
    'ops.background': 'Fundo',
    'ops.backgroundPlaceholder': 'nenhum, ex.: ffffff',
    'ops.format': 'Formato',
    'ops.priority': 'Prioridade (−100–100)',
    'ops.notBefore': 'Não antes de',
    'ops.frames': 'Quadros da animação',
    'ops.callback': 'URL de webhook (avisada ao terminar)',
    'ops.callbackPlaceholder': 'https://exemplo.com.br/hook',
    'ops.dedupe': 'Ignorar duplicadas',
    'ops.quality': 'Qualidade (1–100)',
    'ops.rotate': 'Girar',
    'ops.flip': 'Espelhar',
    'ops.blur': 'Desfoque (sigma)',
    'ops.sharpen': 'Nitidez',
    'ops.brightness': 'Brilho (−100–100)',
    'ops.contrast': 'Contraste (−100–100)',
    'ops.grayscale': 'Tons de cinza',
    'ops.colourGroup': 'Cor e filtros',
    'ops.saturation': 'Saturação (−100–100)',
    'ops.hue': 'Matiz (−180–180°)',
    'ops.gamma': 'Gama (0,1–10)',
    'ops.sepia': 'Sépia (0–100)',
    'ops.tint': 'Tingir (RRGGBB)',
    'ops.tintPlaceholder': 'nenhum, ex.: ff8800',
    'ops.kernel': 'Convolução',
    'ops.pixelate': 'Pixelizar (2–200 px)',
    'ops.watermark': 'Marca d’água',
    'ops.watermarkPlace': 'Posição da marca d’água',
    'ops.watermarkOpacity': 'Opacidade da marca d’água (0–100)',
    'ops.watermarkScale': 'Largura da marca d’água (1–100 %)',
    'ops.invert': 'Inverter cores',
    'ops.equalize': 'Equalizar',
    'ops.watermarkHint': 'A marca d’água é uma das suas imagens concluídas, desenhada sobre cada novo envio.',
    'ops.reset': 'Limpar opções',
    'ops.auto': 'auto',
    'ops.default': 'padrão',
    'ops.none': 'nenhum',
    'ops.unchanged': 'sem alteração',
    'opt.fit.default': 'padrão (conter)',
    'opt.fit.contain': 'conter',
    'opt.fit.cover': 'cobrir',
    'opt.fit.fill': 'esticar',
    'opt.fit.pad': 'completar com fundo',
    'opt.gravity.default': 'padrão (centro)',
    'opt.gravity.smart': 'inteligente (cobrir)',
    'opt.gravity.center': 'centro',
    'opt.gravity.north': 'norte',
    'opt.gravity.south': 'sul',
    'opt.gravity.east': 'leste',
    'opt.gravity.west': 'oeste',
    'opt.gravity.northeast': 'nordeste',
    'opt.gravity.northwest': 'noroeste',
    'opt.gravity.southeast': 'sudeste',
    'opt.gravity.southwest': 'sudoeste',
    'opt.watermarkGravity.default': 'padrão (sudeste)',
    'opt.format.keep': 'manter o original',
    'opt.frames.default': 'padrão (todos)',
    'opt.frames.all': 'todos',
    'opt.frames.first': 'só o primeiro',
    'opt.rotate.none': 'sem rotação',
    'opt.flip.none': 'não espelhar',
    'opt.flip.h': 'horizontal',
    'opt.flip.v': 'vertical',
    'opt.kernel.none': 'nenhuma',
    'opt.kernel.edge': 'bordas',
    'opt.kernel.sobel': 'sobel',
    'opt.kernel.outline': 'contorno',
    'opt.kernel.emboss': 'relevo',
    'opt.kernel.sharpen': 'nitidez',
    'opt.kernel.box': 'média (box)',
    'opt.kernel.gaussian': 'gaussiana',
    'opt.watermark.none': 'nenhuma',
    'summary.none': 'Nenhuma opção definida: vale o pipeline padrão do servidor.',
    'summary.next': 'Próximos envios: {list}.',
    'summary.preset': 'predefinição {name}',
    'summary.presetAutoFormat': 'formato: mantido (a predefinição pede auto)',
    'ops.pipeline': 'Pipeline',
    'ops.pipelineOptions': 'estas opções',
    'ops.pipelinePreset': 'predefinição {name}',
    'ops.pipelineHint': 'Escolha uma predefinição para processar os próximos envios com ela em vez das opções abaixo.',
    'ops.pipelineAutoHint': 'Esta predefinição pede o formato “auto”, que o resultado principal não pode negociar: os envios mantêm o próprio formato.',
    'summary.width': 'largura {value}px',
    'summary.height': 'altura {value}px',
    'summary.fit': 'ajuste {value}',
    'summary.gravity': 'âncora {value}',
    'summary.focus': 'foco {value}',
    'summary.background': 'fundo #{value}',
    'summary.format': 'em {value}',
    'summary.quality': 'qualidade {value}',
    'summary.rotate': 'girar {value}°',
    'summary.flipH': 'espelhar na horizontal',
    'summary.flipV': 'espelhar na vertical',
    'summary.blur': 'desfoque {value}',
    'summary.sharpen': 'nitidez {value}',
    'summary.brightness': 'brilho {value}',
    'summary.contrast': 'contraste {value}',
    'summary.grayscale': 'tons de cinza',
    'summary.saturation': 'saturação {value}',
    'summary.hue': 'matiz {value}°',
    'summary.gamma': 'gama {value}',
    'summary.sepia': 'sépia {value}',
    'summary.tint': 'tingir #{value}',
    'summary.kernel': 'convolução {value}',
    'summary.pixelate': 'pixelizar {value}px',
    'summary.watermark': 'marca d’água “{name}”',
    'summary.watermarkUnnamed': 'imagem',
    'summary.watermarkGravity': 'marca d’água em {value}',
    'summary.watermarkOpacity': 'opacidade da marca d’água {value}',
    'summary.watermarkScale': 'largura da marca d’água {value}%',
    'summary.priority': 'prioridade {value}',
    'summary.notBefore': 'não antes de {time}',
    'summary.invert': 'inverter cores',
    'summary.equalize': 'equalizar',
    'summary.framesFirst': 'só o primeiro quadro',
    'summary.framesAll': 'todos os quadros',
    'summary.callback': 'webhook para {host}',
    'summary.dedupe': 'ignorar duplicadas',

    // ---- painel
    'dash.title': 'Fila e vazão',
    'dash.depth': 'Na fila',
    'dash.oldest': 'Espera mais longa',
    'dash.hour': 'Concluídas na última hora',
    'dash.failed': 'Falharam na última hora',
    'dash.chartLabel': 'Tarefas por minuto na última hora',
    'dash.chartSummary': 'Tarefas por minuto na última hora: concluídas {completed}, com falha {failed}, no máximo {peak} em um minuto.',
    'dash.minute': '{time}: concluídas {completed}, com falha {failed}',
    'dash.caption': 'Tarefas por minuto, últimos 60 minutos',
    'dash.legendCompleted': 'concluídas',
    'dash.legendFailed': 'com falha',
    'dash.waitNone': 'nenhuma',

    // ---- lista de imagens
    'images.title': 'Imagens',
    'images.caption': 'Imagens enviadas, das mais recentes para as mais antigas',
    'stats.inQueue': '{count} na fila',
    'stats.oldest': 'a mais antiga espera há {seconds} s',
    'stats.lastMinute': { one: '{count} concluída no último minuto', other: '{count} concluídas no último minuto' },
    'filter.label': 'Filtrar por status',
    'filter.all': 'Todas',
    'filter.pending': 'Pendentes',
    'filter.processing': 'Processando',
    'filter.completed': 'Concluídas',
    'filter.failed': 'Com falha',
    'filter.cancelled': 'Canceladas',
    'bulk.label': 'Ações em massa',
    'bulk.retry': 'Tentar novamente as que falharam',
    'bulk.delete': 'Excluir as que falharam',
    'bulk.retried': { one: 'Tentando novamente {count} imagem com falha.', other: 'Tentando novamente {count} imagens com falha.' },
    'bulk.deleted': { one: '{count} imagem com falha excluída.', other: '{count} imagens com falha excluídas.' },
    'bulk.error': { one: 'Não foi possível terminar: {message} ({count} feita).', other: 'Não foi possível terminar: {message} ({count} feitas).' },
    'bulk.confirmDelete': {
      one: 'Excluir a {count} imagem com falha? Não é possível desfazer.',
      other: 'Excluir todas as {count} imagens com falha? Não é possível desfazer.',
    },
    'status.pending': 'Pendente',
    'status.processing': 'Processando',
    'status.completed': 'Concluída',
    'status.failed': 'Falhou',
    'status.cancelled': 'Cancelada',
    'table.preview': 'Prévia',
    'table.name': 'Nome',
    'table.status': 'Status',
    'table.size': 'Tamanho',
    'table.dimensions': 'Dimensões',
    'table.time': 'Duração',
    'table.timeShort': 'Tempo',
    'table.actions': 'Ações',
    'table.untitled': 'sem nome {id}',
    'table.details': 'Detalhes de {name}',
    'table.uploadedAt': 'Enviada em {time} · {id}',
    'table.finishedAt': 'Finalizada em {time}',
    'table.attempt': 'tentativa {count}',
    'table.becomes': 'vira',
    'table.running': 'em andamento…',
    'table.downloadProcessed': 'Baixar a processada',
    'table.downloadProcessedLabel': 'Baixar {name} processada',
    'table.downloadOriginal': 'Baixar o original',
    'table.downloadOriginalLabel': 'Baixar o original de {name}',
    'table.downloadFailed': 'O download falhou: {message}',
    'table.loadMore': 'Carregar mais',
    'action.cancel': 'Cancelar',
    'action.cancelLabel': 'Cancelar {name}',
    'action.retry': 'Tentar novamente',
    'action.retryLabel': 'Tentar novamente {name}',
    'action.delete': 'Excluir',
    'action.deleteLabel': 'Excluir {name}',
    'action.retried': 'Processando {name} de novo.',
    'action.retryError': 'Não foi possível tentar {name} novamente: {message}',
    'action.cancelled': '{name} cancelada.',
    'action.alreadyFinished': '{name} já tinha terminado.',
    'action.cancelError': 'Não foi possível cancelar {name}: {message}',
    'action.deleted': '{name} excluída.',
    'action.deleteError': 'Não foi possível excluir {name}: {message}',
    'empty.loading': 'Carregando…',
    'empty.none': 'Nenhuma imagem ainda. Solte algumas acima.',
    'empty.pending': 'Nenhuma imagem pendente.',
    'empty.processing': 'Nenhuma imagem em processamento.',
    'empty.completed': 'Nenhuma imagem concluída.',
    'empty.failed': 'Nenhuma imagem com falha.',
    'empty.cancelled': 'Nenhuma imagem cancelada.',
    'list.loadError': 'Não foi possível carregar as imagens: {message}',
    'list.refreshError': 'Não foi possível atualizar a lista: {message}',
    'list.moreError': 'Não foi possível carregar mais: {message}',
    'announce.untitled': 'uma imagem sem nome',
    'announce.oneCompleted': '{name} concluída',
    'announce.manyCompleted': { one: '{count} imagem concluída', other: '{count} imagens concluídas' },
    'announce.oneFailed': '{name} falhou: {error}',
    'announce.noReason': 'sem motivo informado',
    'announce.manyFailed': { one: '{count} imagem falhou', other: '{count} imagens falharam' },

    // ---- detalhes
    'detail.close': 'Fechar',
    'detail.originalAlt': 'O original',
    'detail.resultAlt': 'O resultado',
    'detail.original': 'Original',
    'detail.result': 'Resultado',
    'detail.pipeline': 'Pipeline',
    'detail.pipelineLabel': 'O pipeline efetivo, em JSON',
    'detail.deliveries': 'Entregas de webhook',
    'detail.deliveriesError': 'Não foi possível carregar as entregas.',
    'detail.deliveriesNone': 'Nenhuma: esta imagem não tem URL de webhook.',
    'detail.status': 'Status',
    'detail.frames': { one: '{count} quadro', other: '{count} quadros' },
    'detail.compareLabel': 'Como comparar',
    'detail.sideBySide': 'Lado a lado',
    'detail.slider': 'Controle deslizante',
    'detail.sliderLabel': 'Divisória entre o original (à esquerda) e o resultado (à direita)',
    'detail.sliderValue': '{original} original, {result} resultado',
    'detail.dominantColour': 'Cor predominante',
    'detail.sha256': 'SHA-256',
    'detail.blurhash': 'BlurHash',
    'detail.uploaded': 'Enviada em',
    'detail.finished': 'Finalizada em',
    'detail.make': 'Fabricante da câmera',
    'detail.model': 'Modelo da câmera',
    'detail.lens': 'Lente',
    'detail.taken': 'Tirada em',
    'detail.exposure': 'Exposição',
    'detail.aperture': 'Abertura',
    'detail.iso': 'ISO',
    'detail.focalLength': 'Distância focal',
    'detail.orientation': 'Orientação EXIF',
    'detail.location': 'Localização',
    'detail.gpsRecorded': 'gravada no arquivo (nunca mostrada nem copiada)',
    'detail.gpsNone': 'nenhuma',
    'delivery.state.pending': 'pendente',
    'delivery.state.delivering': 'entregando',
    'delivery.state.delivered': 'entregue',
    'delivery.state.failed': 'falhou',
    'delivery.outcome.delivered': 'entregue',
    'delivery.outcome.retried': 'será tentada de novo',
    'delivery.outcome.failed': 'falhou',
    'delivery.outcome.refused': 'recusada',

    // ---- predefinições e variantes
    'presets.title': 'Predefinições',
    'presets.new': 'Nova predefinição com as opções',
    'presets.intro': 'Uma predefinição é um pipeline com nome. Os envios podem pedir variantes feitas com predefinições; cada variante tem seu próprio link.',
    'presets.saveOptions': 'Salvar como predefinição…',
    'presets.newTitle': 'Nova predefinição',
    'presets.editTitle': 'Editar a predefinição {name}',
    'presets.name': 'Nome',
    'presets.nameHint': 'Letras minúsculas, algarismos, _ e -, até 64 caracteres.',
    'presets.pipeline': 'Pipeline (JSON)',
    'presets.save': 'Salvar predefinição',
    'presets.loadError': 'Não foi possível carregar as predefinições: {message}',
    'presets.none': 'Nenhuma predefinição ainda.',
    'presets.unavailable': 'Não foi possível carregar as predefinições.',
    'presets.edit': 'Editar',
    'presets.editLabel': 'Editar a predefinição {name}',
    'presets.deleteLabel': 'Excluir a predefinição {name}',
    'presets.updated': 'Atualizada em {time}',
    'presets.badName': 'O nome usa só letras minúsculas, algarismos, _ e -, de 1 a 64 caracteres.',
    'presets.badJson': 'JSON inválido: {message}',
    'presets.confirmReplace': 'Já existe uma predefinição chamada {name}. Substituí-la?',
    'presets.created': 'Predefinição {name} criada.',
    'presets.saved': 'Predefinição {name} salva.',
    'presets.fieldError': '{message} (campo {param})',
    'presets.saveError': 'Não foi possível salvar: {message}',
    'presets.confirmDelete': 'Excluir a predefinição {name}? As variantes já feitas são mantidas.',
    'presets.deleted': 'Predefinição {name} excluída.',
    'presets.deleteError': 'Não foi possível excluir a predefinição {name}: {message}',
    'variants.legend': 'Variantes',
    'variants.hint': 'Cada predefinição marcada aqui também gera uma variante de cada envio, guardada junto do resultado.',
    'variants.none': 'Nenhuma predefinição ainda: “Salvar como predefinição…”, abaixo, cria uma com estas opções.',
    'variants.listLabel': 'Variantes de {name}',
    'variants.download': 'Baixar a variante {preset}',
    'variants.downloadShort': 'Baixar',
    'variants.copySigned': 'Copiar URL assinada',
    'variants.copySignedLabel': 'Copiar URL assinada da variante {preset}',
    'variants.copied': 'URL assinada copiada.',
    'variants.copiedLink': 'Copiada:',
    'variants.copyByHand': 'A área de transferência não está disponível: copie o link manualmente.',
    'variants.signError': 'Sem URL assinada: {message}',
    'summary.variants': 'variantes {list}',
    'detail.variants': 'Variantes',
    'detail.variantsNone': 'Nenhuma: nenhuma predefinição foi pedida.',

    'pipeline.default': 'pipeline padrão',
    'pipeline.empty': 'nenhuma operação',
    'pipeline.auto': 'auto',

    'api.unreachable': 'Não foi possível conectar ao servidor.',
    'api.notJson': 'O servidor enviou uma resposta que não é JSON.',
    'api.connectionLost': 'O envio falhou: a conexão caiu.',
    'api.uploadCancelled': 'Envio cancelado.',
    'common.cancel': 'Cancelar',
  },
};

// ---- the current language -------------------------------------------------------------------

let current = null;
const listeners = new Set();

const isSupported = (code) => Object.hasOwn(CATALOGUES, code);

/** A saved choice, else the browser's first preference we have (pt-* → pt-BR), else English. */
function detect() {
  try {
    const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (saved && isSupported(saved)) return saved;
  } catch {
    // storage disabled: follow the browser
  }
  const nav = globalThis.navigator;
  const preferred = nav ? (nav.languages?.length ? nav.languages : [nav.language]) : [];
  for (const tag of preferred) {
    const lower = String(tag || '').toLowerCase();
    if (lower.startsWith('pt')) return 'pt-BR';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

/** The current language's code ('en' or 'pt-BR'), also the locale for Intl. */
export function getLanguage() {
  if (!current) current = detect();
  return current;
}

/** Calls `listener(code)` after every language switch, to redraw what JavaScript wrote. */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Switches language: saves the choice, sets <html lang>, re-translates the page, tells listeners. */
export function setLanguage(code) {
  if (!isSupported(code)) return;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, code);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
  if (code === getLanguage()) return;
  current = code;
  applyTranslations();
  for (const listener of listeners) listener(code);
}

// ---- looking texts up -------------------------------------------------------------------------

const pluralRules = new Map();
function pluralCategory(language, count) {
  if (!pluralRules.has(language)) pluralRules.set(language, new Intl.PluralRules(language));
  return pluralRules.get(language).select(count);
}

/**
 * The text for `key` in the current language, with `{name}` replaced by `vars.name` (numbers
 * formatted for the language). A plural entry picks its form by `vars.count`.
 */
export function t(key, vars = {}) {
  const language = getLanguage();
  let text = CATALOGUES[language][key] ?? CATALOGUES.en[key];
  if (text === undefined) {
    console.error(`i18n: no text for "${key}"`);
    return key;
  }
  if (typeof text === 'object') text = text[pluralCategory(language, Number(vars.count))] ?? text.other;
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    const value = vars[name];
    if (value === undefined || value === null) return whole;
    return typeof value === 'number' ? new Intl.NumberFormat(language).format(value) : String(value);
  });
}

/**
 * Writes a translated text into an element and remembers the key, so a language switch
 * re-translates it (for texts JavaScript sets, like the connection state).
 */
export function localize(el, key, vars) {
  el.dataset.i18n = key;
  if (vars) el.dataset.i18nVars = JSON.stringify(vars);
  else delete el.dataset.i18nVars;
  el.textContent = t(key, vars);
}

/** Writes text that is not ours (a server message) where a translated one may have been. */
export function setPlainText(el, text) {
  delete el.dataset.i18n;
  delete el.dataset.i18nVars;
  el.textContent = text;
}

/**
 * Props for dom.js's h(): translated attributes that follow language switches, e.g.
 * h('button', i18nAttrs({ 'aria-label': 'action.deleteLabel' }, { name })).
 */
export function i18nAttrs(attrs, vars) {
  const props = {};
  for (const [attr, key] of Object.entries(attrs)) props[attr] = t(key, vars);
  props['data-i18n-attr'] = Object.entries(attrs).map(([attr, key]) => `${attr}:${key}`).join(';');
  if (vars) props['data-i18n-vars'] = JSON.stringify(vars);
  return props;
}

/** Fills every [data-i18n] and [data-i18n-attr] element under `root`, and sets <html lang>. */
export function applyTranslations(root = document) {
  document.documentElement.lang = getLanguage();
  const varsOf = (el) => {
    try {
      return el.dataset.i18nVars ? JSON.parse(el.dataset.i18nVars) : undefined;
    } catch {
      return undefined;
    }
  };
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n, varsOf(el));
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key, varsOf(el)));
    }
  }
}

/** Fills the header's <select> with the languages and switches on change. */
export function setupLanguageSwitch(select) {
  select.replaceChildren(
    ...LANGUAGES.map(({ code, name }) => {
      const option = document.createElement('option');
      option.value = code;
      option.lang = code;
      option.textContent = name;
      return option;
    }),
  );
  select.value = getLanguage();
  select.addEventListener('change', () => setLanguage(select.value));
  onLanguageChange((code) => {
    select.value = code;
  });
}
