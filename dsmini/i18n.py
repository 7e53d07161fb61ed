"""Every user-facing string of the app, in English and Russian, and `t()` to look one up.

One dict, so a translator sees all of it in one file and a test can check that every key has
both languages with the same `{placeholders}`. Keys are dotted, grouped by where they appear
(`chart.*` for figure titles and axes; pages add their own sections); add new keys in their
section, keeping sections roughly alphabetical.
"""

from __future__ import annotations

LANGUAGES = {"en": "English", "ru": "Русский"}
DEFAULT_LANGUAGE = "en"

STRINGS: dict[str, dict[str, str]] = {
    # app shell -----------------------------------------------------------------------------------
    "nav.generate": {"en": "Generate", "ru": "Генерация"},
    "nav.home": {"en": "Home", "ru": "Главная"},
    "nav.train": {"en": "Train", "ru": "Обучение"},
    "ui.checkpoint": {"en": "Model (checkpoint)", "ru": "Модель (чекпойнт)"},
    "ui.checkpoint_help": {
        "en": "Shipped models and the runs saved on the Train page.",
        "ru": "Готовые модели и запуски, сохранённые на странице «Обучение».",
    },
    "ui.device": {"en": "Device: {device}", "ru": "Устройство: {device}"},
    "ui.no_checkpoint": {
        "en": "No trained model yet: train one on the Train page.",
        "ru": "Обученных моделей пока нет: обучите модель на странице «Обучение».",
    },
    "ui.unexpected": {
        "en": "Something went wrong ({error}). The app keeps running; please try again.",
        "ru": "Что-то пошло не так ({error}). Приложение работает дальше; попробуйте ещё раз.",
    },
    # home page -----------------------------------------------------------------------------------
    "home.active": {"en": "Active params / char", "ru": "Активных параметров на символ"},
    "home.active_help": {
        "en": "Each character uses the shared experts and only top-k of the routed ones.",
        "ru": "Каждый символ проходит через общих экспертов и только top-k маршрутизируемых.",
    },
    "home.card": {"en": "Loaded model: {name}", "ru": "Загруженная модель: {name}"},
    "home.corpus": {"en": "Corpus", "ru": "Корпус"},
    "home.generate10": {"en": "Generate 10 names", "ru": "Сгенерировать 10 имён"},
    "home.intro": {
        "en": "A small **DeepSeek-style** language model that writes names one character at a time. "
              "It has the three ideas of DeepSeek-V2/V3: **Multi-head Latent Attention** (keys and values "
              "squeezed into one small cached vector), **Mixture of Experts** (each character is sent to a "
              "few specialist sub-networks) and **Multi-Token Prediction** (an extra head guesses the character "
              "after next). Train your own on the Train page; see the experts at work on the Generate page.",
        "ru": "Маленькая языковая модель **в стиле DeepSeek**, которая пишет имена по одному символу. "
              "В ней три идеи DeepSeek-V2/V3: **Multi-head Latent Attention** (ключи и значения сжаты в один "
              "маленький кэшируемый вектор), **Mixture of Experts** (каждый символ отправляется нескольким "
              "подсетям-специалистам) и **Multi-Token Prediction** (дополнительная голова угадывает символ "
              "через один). Обучите свою модель на странице «Обучение»; экспертов за работой видно на "
              "странице «Генерация».",
    },
    "home.params": {"en": "Parameters", "ru": "Параметры"},
    "home.params_help": {
        "en": "All weights of the main model (the MTP head is counted separately).",
        "ru": "Все веса основной модели (голова MTP считается отдельно).",
    },
    "home.title": {"en": "dsmini: a mini DeepSeek you can watch think", "ru": "dsmini: мини-DeepSeek, который думает у вас на глазах"},
    "home.val_loss": {"en": "Val loss, nats/char", "ru": "Потери на валидации, нат/символ"},
    "home.val_loss_help": {
        "en": "Cross-entropy on names the model never saw; lower is better (a random guess is ln(alphabet)).",
        "ru": "Кросс-энтропия на именах, которых модель не видела; чем меньше, тем лучше (случайное угадывание — ln(алфавита)).",
    },
    # generate page -------------------------------------------------------------------------------
    "gen.button": {"en": "Generate", "ru": "Сгенерировать"},
    "gen.count": {"en": "How many", "ru": "Сколько"},
    "gen.max_len": {"en": "Max length", "ru": "Макс. длина"},
    "gen.next_title": {"en": "What the model expected next", "ru": "Что модель ожидала дальше"},
    "gen.oov": {
        "en": "The prefix has characters this model never saw: {chars}. Use letters of its alphabet.",
        "ru": "В префиксе есть символы, которых модель не знает: {chars}. Используйте буквы её алфавита.",
    },
    "gen.pick": {"en": "Look inside one name", "ru": "Заглянуть внутрь одного имени"},
    "gen.position": {"en": "After character", "ru": "После символа"},
    "gen.prefix": {"en": "Prefix (optional)", "ru": "Начало (необязательно)"},
    "gen.prefix_help": {"en": "Every name starts with it, e.g. Крас or Ma.", "ru": "С него начинается каждое имя, например Крас."},
    "gen.prefix_too_long": {
        "en": "The prefix has {n} characters but the max length is {max_len}.",
        "ru": "В префиксе {n} символов, а максимальная длина — {max_len}.",
    },
    "gen.routing_caption": {
        "en": "Each column is a character; in each MoE layer, coloured cells are the routed experts it was sent to "
              "(number = gate weight). The shared experts see every character.",
        "ru": "Каждый столбец — символ; в каждом MoE-слое цветные клетки — эксперты, к которым он направлен "
              "(число — вес гейта). Общие эксперты видят каждый символ.",
    },
    "gen.routing_title": {"en": "Which experts handled each character", "ru": "Какие эксперты обработали каждый символ"},
    "gen.seed": {"en": "Seed", "ru": "Зерно (seed)"},
    "gen.temperature": {"en": "Temperature", "ru": "Температура"},
    "gen.temperature_help": {
        "en": "0 = always the likeliest character; higher = more surprising names.",
        "ru": "0 — всегда самый вероятный символ; больше — более неожиданные имена.",
    },
    "gen.title": {"en": "Generate names", "ru": "Генерация имён"},
    "gen.top_k": {"en": "Top-k (0 = off)", "ru": "Top-k (0 — выкл.)"},
    "gen.top_k_help": {"en": "Sample only among the k likeliest characters.", "ru": "Выбирать только из k самых вероятных символов."},
    "gen.top_p": {"en": "Top-p", "ru": "Top-p"},
    "gen.top_p_help": {
        "en": "Sample among the likeliest characters that together hold this probability (1 = off).",
        "ru": "Выбирать среди самых вероятных символов с суммарной вероятностью не больше этой (1 — выкл.).",
    },
    # train page ----------------------------------------------------------------------------------
    "train.alphabet": {"en": "Alphabet", "ru": "Алфавит"},
    "train.arch": {"en": "Architecture", "ru": "Архитектура"},
    "train.attn_type": {"en": "Attention", "ru": "Внимание"},
    "train.aux": {"en": "Aux-loss coefficient", "ru": "Коэф. балансирующих потерь"},
    "train.batch": {"en": "Batch (names)", "ru": "Батч (имён)"},
    "train.capacity": {"en": "Capacity factor (0 = off)", "ru": "Коэф. ёмкости (0 — выкл.)"},
    "train.capacity_help": {
        "en": "Each expert takes at most capacity × its fair share of tokens per batch; the rest are dropped.",
        "ru": "Каждый эксперт берёт не больше «ёмкость × справедливая доля» токенов батча; остальные отбрасываются.",
    },
    "train.corpus": {"en": "Built-in corpus", "ru": "Встроенный корпус"},
    "train.d_model": {"en": "Width (d_model)", "ru": "Ширина (d_model)"},
    "train.download": {"en": "Download checkpoint (.zip)", "ru": "Скачать чекпойнт (.zip)"},
    "train.examples": {"en": "e.g. {names}", "ru": "например: {names}"},
    "train.extra_steps": {"en": "More steps", "ru": "Ещё шагов"},
    "train.ffn_type": {"en": "Feed-forward", "ru": "Полносвязный блок"},
    "train.intro": {
        "en": "The run trains in the background: switch pages freely and come back.",
        "ru": "Обучение идёт в фоне: можно переходить на другие страницы и возвращаться.",
    },
    "train.length": {"en": "name length", "ru": "длина имени"},
    "train.lr": {"en": "Learning rate", "ru": "Скорость обучения"},
    "train.m_dropped": {"en": "Dropped tokens (last step)", "ru": "Отброшено токенов (посл. шаг)"},
    "train.m_dropped_help": {
        "en": "Tokens over an expert's capacity: they skip the routed experts.",
        "ru": "Токены сверх ёмкости эксперта: они проходят мимо маршрутизируемых экспертов.",
    },
    "train.m_loss": {"en": "Train loss", "ru": "Потери (обучение)"},
    "train.m_speed": {"en": "Tokens / s", "ru": "Токенов / с"},
    "train.m_val": {"en": "Val loss", "ru": "Потери (валидация)"},
    "train.max_len": {"en": "Longest", "ru": "Самое длинное"},
    "train.mean_len": {"en": "Mean length", "ru": "Средняя длина"},
    "train.mtp_depth": {"en": "MTP depth", "ru": "Глубина MTP"},
    "train.n_heads": {"en": "Heads", "ru": "Головы"},
    "train.n_layers": {"en": "Layers", "ru": "Слои"},
    "train.n_names": {"en": "Names", "ru": "Имён"},
    "train.nats": {"en": "nats / char", "ru": "нат / символ"},
    "train.optimizer": {"en": "Optimizer", "ru": "Оптимизатор"},
    "train.optimizer_help": {
        "en": "muon: Muon for the weight matrices, AdamW for the rest (slower per step on a CPU).",
        "ru": "muon: Muon для матриц весов, AdamW для остального (на CPU каждый шаг медленнее).",
    },
    "train.preset": {"en": "Size preset", "ru": "Размер (пресет)"},
    "train.queued": {
        "en": "Queued: other runs are using the CPU. Position {position}; it starts by itself.",
        "ru": "В очереди: процессор занят другими запусками. Место {position}; запуск начнётся сам.",
    },
    "train.resume": {"en": "Continue training", "ru": "Продолжить обучение"},
    "train.routed": {"en": "Routed experts", "ru": "Маршрутизируемые эксперты"},
    "train.router": {"en": "Router", "ru": "Маршрутизатор"},
    "train.samples": {"en": "Latest samples:", "ru": "Последние примеры:"},
    "train.save": {"en": "Save", "ru": "Сохранить"},
    "train.save_help": {
        "en": "Letters, digits, - _ . (no slashes); it appears in the sidebar model list.",
        "ru": "Буквы, цифры, - _ . (без слэшей); модель появится в списке слева.",
    },
    "train.save_name": {"en": "Checkpoint name", "ru": "Имя чекпойнта"},
    "train.saved": {"en": "Saved as {name}: pick it in the sidebar.", "ru": "Сохранено как {name}: выберите модель слева."},
    "train.setup": {"en": "Corpus, model and training settings", "ru": "Корпус, модель и настройки обучения"},
    "train.shared": {"en": "Shared experts", "ru": "Общие эксперты"},
    "train.source": {"en": "Names from", "ru": "Откуда имена"},
    "train.source_builtin": {"en": "built-in corpus", "ru": "встроенный корпус"},
    "train.source_upload": {"en": "my .txt file", "ru": "мой файл .txt"},
    "train.start": {"en": "Start training", "ru": "Начать обучение"},
    "train.state_completed": {"en": "Done: {step}/{total} steps", "ru": "Готово: {step}/{total} шагов"},
    "train.state_created": {"en": "Starting…", "ru": "Запуск…"},
    "train.state_failed": {"en": "Failed at step {step}/{total}", "ru": "Ошибка на шаге {step}/{total}"},
    "train.state_queued": {"en": "Queued ({step}/{total})", "ru": "В очереди ({step}/{total})"},
    "train.state_running": {"en": "Training: step {step}/{total}", "ru": "Обучение: шаг {step}/{total}"},
    "train.state_stopped": {"en": "Stopped at step {step}/{total}", "ru": "Остановлено на шаге {step}/{total}"},
    "train.state_stopping": {"en": "Stopping after step {step}…", "ru": "Останавливаем после шага {step}…"},
    "train.steps": {"en": "Steps", "ru": "Шагов"},
    "train.stop": {"en": "Stop", "ru": "Остановить"},
    "train.title": {"en": "Train a model live", "ru": "Обучение модели в реальном времени"},
    "train.top_k": {"en": "Top-k experts", "ru": "Top-k экспертов"},
    "train.upload": {"en": "Text file, one name per line (UTF-8)", "ru": "Текстовый файл, одно имя в строке (UTF-8)"},
    "train.upload_help": {"en": "Up to 5 MB; at least 2 names.", "ru": "До 5 МБ; минимум 2 имени."},
    # charts: shared -----------------------------------------------------------------------------
    "chart.after_char": {"en": "after character", "ru": "после символа"},
    "chart.layer": {"en": "layer {layer}", "ru": "слой {layer}"},
    "chart.layer_mtp": {"en": "MTP depth {depth}", "ru": "MTP, глубина {depth}"},
    "chart.moe_layer_n": {"en": "MoE layer #{n}", "ru": "MoE-слой №{n}"},
    "chart.no_moe": {
        "en": "This model has no MoE layers (dense FFN): there is no routing to show.",
        "ru": "В этой модели нет MoE-слоёв (плотный FFN): показывать маршрутизацию нечего.",
    },
    "chart.no_steps": {
        "en": "No training steps with expert load yet.",
        "ru": "Пока нет шагов обучения с данными о загрузке экспертов.",
    },
    "chart.probability": {"en": "probability", "ru": "вероятность"},
    "chart.step": {"en": "step", "ru": "шаг"},
    # charts: architecture ------------------------------------------------------------------------
    "chart.arch.attn_gqa": {
        "en": "GQA, {heads} heads, {groups} KV groups<br>cache K+V {cache}",
        "ru": "GQA, голов: {heads}, KV-групп: {groups}<br>кэш K+V {cache}",
    },
    "chart.arch.attn_mha": {
        "en": "MHA, {heads} heads × {dim}<br>cache K+V {cache}",
        "ru": "MHA, голов: {heads}, размер {dim}<br>кэш K+V {cache}",
    },
    "chart.arch.attn_mla": {
        "en": "MLA, {heads} heads<br>cache c_kv {kv} + k_rope {rope}",
        "ru": "MLA, голов: {heads}<br>кэш c_kv {kv} + k_rope {rope}",
    },
    "chart.arch.attn_mqa": {
        "en": "MQA, {heads} heads, 1 KV head<br>cache K+V {cache}",
        "ru": "MQA, голов: {heads}, 1 KV-голова<br>кэш K+V {cache}",
    },
    "chart.arch.dense": {"en": "dense FFN<br>SwiGLU {d_ff}", "ru": "плотный FFN<br>SwiGLU {d_ff}"},
    "chart.arch.embedding": {"en": "embedding<br>{vocab} × {d_model}", "ru": "эмбеддинг<br>{vocab} × {d_model}"},
    "chart.arch.group_dense": {"en": "{span} · dense", "ru": "{span} · плотные"},
    "chart.arch.group_moe": {"en": "{span} · MoE", "ru": "{span} · MoE"},
    "chart.arch.head": {"en": "RMSNorm<br>→ head", "ru": "RMSNorm<br>→ голова"},
    "chart.arch.input": {"en": "input<br>characters", "ru": "входные<br>символы"},
    "chart.arch.layers_many": {"en": "layers {first}–{last} (×{n})", "ru": "слои {first}–{last} (×{n})"},
    "chart.arch.layers_one": {"en": "layer {first} (×1)", "ru": "слой {first} (×1)"},
    "chart.arch.moe": {
        "en": "MoE: {shared} shared + {routed} routed,<br>top-{k} per character",
        "ru": "MoE: {shared} общ. + {routed} маршрут.,<br>top-{k} на символ",
    },
    "chart.arch.mtp": {
        "en": "MTP ×{depth}: [hnorm(h); enorm(emb t+k)] → eh_proj → Block<br>shared embedding and head",
        "ru": "MTP ×{depth}: [hnorm(h); enorm(emb t+k)] → eh_proj → Block<br>общие эмбеддинг и голова",
    },
    "chart.arch.mtp_emb": {"en": "emb(t+k)", "ru": "emb(t+k)"},
    "chart.arch.mtp_off": {"en": "no MTP (mtp_depth = 0)", "ru": "без MTP (mtp_depth = 0)"},
    "chart.arch.mtp_out_many": {"en": "characters<br>+2 … +{last}", "ru": "символы<br>+2 … +{last}"},
    "chart.arch.mtp_out_one": {"en": "character<br>after next", "ru": "символ<br>через один"},
    "chart.arch.next_char": {"en": "next<br>character", "ru": "следующий<br>символ"},
    "chart.arch.subtitle": {
        "en": "KV cache per character: {values} values ({layers} layers)",
        "ru": "KV-кэш на символ: {values} (слоёв: {layers})",
    },
    "chart.arch.title": {"en": "Architecture of this model", "ru": "Архитектура этой модели"},
    # charts: expert load -------------------------------------------------------------------------
    "chart.imbalance.perfect": {"en": "perfect balance", "ru": "идеальный баланс"},
    "chart.imbalance.title": {
        "en": "Load imbalance over training (max / mean expert load)",
        "ru": "Дисбаланс нагрузки за обучение (макс. / средняя нагрузка эксперта)",
    },
    "chart.imbalance.y": {"en": "max / mean load", "ru": "макс. / средняя нагрузка"},
    "chart.load.expert": {"en": "routed expert", "ru": "маршрутизируемый эксперт"},
    "chart.load.title": {
        "en": "Share of routed characters per expert at step {step}",
        "ru": "Доля символов на каждого эксперта на шаге {step}",
    },
    "chart.load.uniform": {"en": "uniform 1/{n}", "ru": "равномерно 1/{n}"},
    "chart.load.y": {"en": "share of assignments", "ru": "доля назначений"},
    # charts: next character ----------------------------------------------------------------------
    "chart.next.heatmap_hover": {
        "en": "after “{context}”<br>#{rank}: {cand} (p = {p})<br>actual: {actual} (p = {p_actual})",
        "ru": "после «{context}»<br>№{rank}: {cand} (p = {p})<br>на самом деле: {actual} (p = {p_actual})",
    },
    "chart.next.heatmap_title": {
        "en": "What the model expected next, at every character (bold: the actual next)",
        "ru": "Что модель ждала дальше после каждого символа (жирным: что было на самом деле)",
    },
    "chart.next.rank": {"en": "rank", "ru": "место"},
    "chart.next.title": {
        "en": "After “{context}”: actual next “{actual}” (p = {p})",
        "ru": "После «{context}»: на самом деле «{actual}» (p = {p})",
    },
    # charts: routing -----------------------------------------------------------------------------
    "chart.routing.expert": {"en": "expert {expert}", "ru": "эксперт {expert}"},
    "chart.routing.gate_weight": {"en": "gate weight", "ru": "вес гейта"},
    "chart.routing.hover": {
        "en": "“{char}” (position {pos}) · {layer}<br>{expert}: weight {weight}, router p {prob}",
        "ru": "«{char}» (позиция {pos}) · {layer}<br>{expert}: вес {weight}, p роутера {prob}",
    },
    "chart.routing.hover_shared": {
        "en": "“{char}” (position {pos}) · {layer}<br>shared experts: always on",
        "ru": "«{char}» (позиция {pos}) · {layer}<br>общие эксперты: всегда включены",
    },
    "chart.routing.shared": {"en": "shared ×{n} (always on)", "ru": "общие ×{n} (всегда)"},
    "chart.routing.title": {
        "en": "Which routed experts each character went to (top-{k} of {n})",
        "ru": "К каким экспертам попал каждый символ (top-{k} из {n})",
    },
}


def t(key: str, lang: str = DEFAULT_LANGUAGE, **fmt: object) -> str:
    """The string for `key` in `lang`, formatted with `fmt`.

    Falls back to English, then to the key itself: a missing translation shows up as English
    (or as a visible key) instead of crashing a page in front of a user.
    """
    entry = STRINGS.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**fmt)
