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
    # domain labels of the built-in corpora (a user's own labels are shown as written) ---------------
    "domain.en": {"en": "English", "ru": "английские"},
    "domain.female": {"en": "female", "ru": "женские"},
    "domain.first": {"en": "first names", "ru": "имена"},
    "domain.male": {"en": "male", "ru": "мужские"},
    "domain.patronymic": {"en": "patronymics", "ru": "отчества"},
    "domain.ru": {"en": "Russian", "ru": "русские"},
    "domain.surname": {"en": "surnames", "ru": "фамилии"},
    # attention page + kv-cache page (and their charts) -------------------------------------------
    "attention.grid_caption": {
        "en": "Row = the character doing the looking (query), column = the character it looks at (key); each row "
              "sums to 1. Empty cells are the future: a character may only look back. The last column averages the "
              "heads of the layer. Many heads lean on the boundary “|” when nothing else is useful.",
        "ru": "Строка — символ, который смотрит (запрос), столбец — символ, на который он смотрит (ключ); сумма "
              "строки равна 1. Пустые клетки — будущее: символ может смотреть только назад. Последний столбец — "
              "среднее по головам слоя. Многие головы опираются на границу «|», когда больше не на что смотреть.",
    },
    "attention.grid_title": {"en": "Attention in every layer and head", "ru": "Внимание в каждом слое и голове"},
    "attention.head": {"en": "Head", "ru": "Голова"},
    "attention.intro": {
        "en": "Type a name and see, for every layer and head, how much each character attends to the characters "
              "before it. With MLA, each score also splits into what the characters are (content) and where they "
              "are (position).",
        "ru": "Введите имя и посмотрите, сколько внимания каждый символ уделяет предыдущим — в каждом слое и "
              "голове. В MLA каждая оценка ещё и раскладывается на то, какие это символы (содержание), и где они "
              "стоят (позиция).",
    },
    "attention.layer": {"en": "Layer", "ru": "Слой"},
    "attention.name": {"en": "Name", "ru": "Имя"},
    "attention.name_help": {
        "en": "Any name in the model's alphabet, up to {max_len} characters.",
        "ru": "Любое имя из букв алфавита модели, до {max_len} символов.",
    },
    "attention.no_split": {
        "en": "This model uses {kind} attention: its keys carry position through RoPE on the whole head, so a score "
              "does not split into a content part and a position part. MLA's decoupled RoPE key is what makes the "
              "split possible; train an MLA model to see it.",
        "ru": "В этой модели внимание {kind}: позиция входит в ключи через RoPE на всю голову, поэтому оценка не "
              "раскладывается на часть «содержание» и часть «позиция». Такое разложение даёт отдельный RoPE-ключ "
              "MLA; обучите MLA-модель, чтобы его увидеть.",
    },
    "attention.oov": {
        "en": "The name has characters this model never saw: {chars}. Use letters of its alphabet.",
        "ru": "В имени есть символы, которых модель не знает: {chars}. Используйте буквы её алфавита.",
    },
    "attention.split_caption": {
        "en": "Before the softmax, MLA's score for query i and key j is the sum of two dot products: the **content** "
              "part q_nope·k_nope (keys up-projected from the cached latent c_kv, no position in them) and the "
              "**position** part q_rope·k_rope (the decoupled RoPE key, shared by all heads). Left = middle + right, "
              "cell by cell; all three are scaled by 1/√d. Red = raises attention, blue = lowers it.",
        "ru": "До softmax оценка MLA для запроса i и ключа j — сумма двух скалярных произведений: часть "
              "**содержания** q_nope·k_nope (ключи восстановлены из кэшированного латентного c_kv, позиции в них нет) "
              "и часть **позиции** q_rope·k_rope (отдельный RoPE-ключ, общий для всех голов). Слева = середина + "
              "справа, клетка за клеткой; все три умножены на 1/√d. Красное повышает внимание, синее понижает.",
    },
    "attention.split_title": {
        "en": "Content vs position: where each score comes from",
        "ru": "Содержание или позиция: из чего складывается оценка",
    },
    "attention.selection_caption.dsa": {
        "en": "DSA: a small lightning indexer scored every earlier character, and this query's attention saw only "
              "its top-{k} picks (coloured, outlined), the same picks for every head; grey ones got exactly zero weight.",
        "ru": "DSA: маленький индексатор оценил все предыдущие символы, и внимание запроса видело только его top-{k} "
              "(цветные, в рамке), одни и те же для всех голов; серые получили ровно нулевой вес.",
    },
    "attention.selection_caption.loglinear": {
        "en": "Log-linear: the past splits into Fenwick buckets of 1, 2, 4, … characters, newest finest; levels below "
              "{fine} are seen character by character, each coarser bucket (one outlined box) only as its mean.",
        "ru": "Лог-линейное: прошлое делится на корзины Фенвика по 1, 2, 4, … символа, ближние мельче; уровни ниже "
              "{fine} видны посимвольно, а каждая более крупная корзина (одна рамка) — только как среднее.",
    },
    "attention.selection_caption.moba": {
        "en": "MoBA: keys come in blocks of {size}; each query saw its own block up to itself plus the top-{top} "
              "earlier blocks its head's gate chose (outlined), and nothing of the grey blocks.",
        "ru": "MoBA: ключи разбиты на блоки по {size}; каждый запрос видел свой блок до себя и top-{top} ранних "
              "блоков, выбранных гейтом его головы (в рамке), и ничего из серых блоков.",
    },
    "attention.selection_title": {
        "en": "What each query was allowed to see",
        "ru": "Что каждому запросу было разрешено видеть",
    },
    "attention.title": {"en": "Attention: who each character looks at", "ru": "Внимание: куда смотрит каждый символ"},
    "attention.too_long": {
        "en": "The name has {n} characters; this model reads at most {max_len}.",
        "ru": "В имени {n} символов, а модель читает не больше {max_len}.",
    },
    "kv.absorb_caption": {
        "en": "Naive MLA up-projects the cached latent into every head's keys and values at each step; absorbed MLA "
              "(DeepSeek-V3 inference) folds W_UK into the query and W_UV into the output and attends over the latent "
              "directly. Same numbers, less work per step when the latent is much smaller than heads × head size "
              "and the context is long (V2: 512 vs 128 × 256 over 128K tokens). Here the latent has {d_c} values against "
              "{heads} for heads × (key + value) size, but names are a few characters long and a tiny model's step "
              "is mostly fixed overhead, so the two run at about the same speed, either may win.",
        "ru": "Наивный MLA на каждом шаге восстанавливает из кэшированного латентного вектора ключи и значения всех "
              "голов; поглощённый (инференс DeepSeek-V3) вносит W_UK в запрос, а W_UV — в выход и считает внимание "
              "прямо по латентному вектору. Числа те же, а работы на шаг меньше, когда латентный вектор много меньше "
              "«голов × размер головы» и контекст длинный (V2: 512 против 128 × 256 на 128K токенах). Здесь в латентном "
              "векторе {d_c} значений против {heads} у «головы × (ключ + значение)», но имена в несколько символов, а "
              "шаг крошечной модели — в основном постоянные накладные расходы, так что скорость почти одинакова, "
              "выиграть может любой.",
    },
    "kv.absorb_title": {"en": "Naive vs absorbed MLA decoding", "ru": "Наивное и поглощённое декодирование MLA"},
    "kv.absorbed": {"en": "Absorbed, ms / char", "ru": "Поглощённый, мс / символ"},
    "kv.growth_caption": {
        "en": "Solid: real cache tensors allocated for 1 … block_size positions; dashed: the same bytes per token "
              "carried on to {max_len}. Both axes are logarithmic, so the gaps between lines are the ratios.",
        "ru": "Сплошные линии — реальные тензоры кэша на 1 … block_size позиций; пунктир — те же байты на токен, "
              "продолженные до {max_len}. Обе оси логарифмические, поэтому расстояния между линиями — это отношения.",
    },
    "kv.growth_title": {"en": "Cache size vs sequence length", "ru": "Размер кэша в зависимости от длины"},
    "kv.intro": {
        "en": "While generating, a model keeps what each past character contributes to attention — the **KV cache** "
              "— so it never recomputes it. Its size per character decides how long a context fits in memory. "
              "MLA caches one small latent vector c_kv plus a small RoPE key instead of every head's key and value.",
        "ru": "При генерации модель хранит вклад каждого прошлого символа во внимание — **KV-кэш** — чтобы не "
              "пересчитывать его. Его размер на символ определяет, какой контекст поместится в память. MLA хранит "
              "один маленький латентный вектор c_kv и маленький RoPE-ключ вместо ключей и значений всех голов.",
    },
    "kv.match_bad": {
        "en": "Analytic and measured sizes differ for: {kinds}.",
        "ru": "Расчётный и измеренный размеры расходятся для: {kinds}.",
    },
    "kv.match_ok": {
        "en": "Analytic (Table 1) and measured sizes agree for all {n} attention types.",
        "ru": "Расчётные (таблица 1) и измеренные размеры совпадают для всех {n} типов внимания.",
    },
    "kv.model_caption": {
        "en": "Table 1 of DeepSeek-V2 at this model's sizes ({layers} layers, {heads} heads). For MHA / GQA / MQA the "
              "head size is d_h = {d_h} (d_model / n_heads) and GQA has n_g = {n_g} groups (the config's n_kv_heads); "
              "MLA caches c_kv ({d_c}) + k_rope ({d_r}) per layer. **Measured**: the loaded model greedily generated a "
              "name, and a random-init twin of each other type (same config, other attention — a cache's size does "
              "not depend on the weights) decoded the same name; then cache.numel() / max_len and its bytes.",
        "ru": "Таблица 1 DeepSeek-V2 для размеров этой модели (слоёв: {layers}, голов: {heads}). Для MHA / GQA / MQA "
              "размер головы d_h = {d_h} (d_model / n_heads), у GQA число групп n_g = {n_g} (n_kv_heads из конфигурации); "
              "MLA хранит c_kv ({d_c}) + k_rope ({d_r}) на слой. **Измерено**: загруженная модель жадно сгенерировала "
              "имя, а случайно инициализированный двойник каждого другого типа (та же конфигурация, другое внимание — "
              "размер кэша от весов не зависит) декодировал то же имя; затем cache.numel() / max_len и его байты.",
    },
    "kv.model_title": {"en": "This model's cache, per character", "ru": "Кэш этой модели на символ"},
    "kv.naive": {"en": "Naive, ms / char", "ru": "Наивный, мс / символ"},
    "kv.not_mla": {
        "en": "This model uses {kind} attention; weight absorption is an MLA decoding path, so there is nothing to "
              "compare. Pick an MLA checkpoint (e.g. the shipped ones) to time it.",
        "ru": "В этой модели внимание {kind}; поглощение весов — путь декодирования MLA, сравнивать нечего. "
              "Выберите MLA-чекпойнт (например, один из готовых), чтобы измерить время.",
    },
    "kv.same_bad": {
        "en": "The two paths disagree: max |naive − absorbed| logit = {diff}.",
        "ru": "Пути расходятся: max |наивный − поглощённый| логит = {diff}.",
    },
    "kv.same_ok": {
        "en": "Same logits at every step (allclose ✓): max |naive − absorbed| = {diff}.",
        "ru": "Одинаковые логиты на каждом шаге (allclose ✓): max |наивный − поглощённый| = {diff}.",
    },
    "kv.scale_caption": {
        "en": "DeepSeek-V2: 60 layers, 128 heads × 128, d_c = 512, d_h^R = 64; V3 the same with 61 layers. bf16 "
              "(2 bytes per value), GQA with 8 groups, 1K = 1,024 and 128K = 131,072 tokens, GB = 10⁹ bytes. MLA "
              "caches 576 values per layer per token against MHA's 32,768 — as little as GQA with 2.25 groups "
              "(V2 §2.1.4), yet V2 reports it stronger than MHA.",
        "ru": "DeepSeek-V2: 60 слоёв, 128 голов × 128, d_c = 512, d_h^R = 64; V3 — то же с 61 слоем. bf16 (2 байта "
              "на значение), GQA с 8 группами, 1K = 1 024 и 128K = 131 072 токена, ГБ = 10⁹ байт. MLA хранит 576 "
              "значений на слой на токен против 32 768 у MHA — так же мало, как GQA с 2,25 группы (V2 §2.1.4), а по "
              "данным V2 работает лучше MHA.",
    },
    "kv.scale_title": {"en": "At DeepSeek's size", "ru": "В масштабе DeepSeek"},
    "kv.skipped": {
        "en": "No {kind} twin for this configuration: {reason}",
        "ru": "Для этой конфигурации нет двойника {kind}: {reason}",
    },
    "kv.speedup": {"en": "Naive / absorbed", "ru": "Наивный / поглощённый"},
    "kv.timing_note": {
        "en": "Greedy decoding of {names} names ({chars} characters), {repeats} alternating runs per path; the time "
              "per character is the median forward pass (one per character) on this machine's shared CPU.",
        "ru": "Жадное декодирование имён (их {names}, символов {chars}), чередующихся запусков на путь: {repeats}; "
              "время на символ — медиана прохода модели (один проход на символ) на общем процессоре этой машины.",
    },
    "kv.title": {"en": "KV cache: what MLA saves", "ru": "KV-кэш: что экономит MLA"},
    "kv.v2": {"en": "DeepSeek-V2 (60 layers)", "ru": "DeepSeek-V2 (60 слоёв)"},
    "kv.v3": {"en": "DeepSeek-V3 (61 layers)", "ru": "DeepSeek-V3 (61 слой)"},
    "chart.attention.content": {"en": "content: q_nope·k_nope", "ru": "содержание: q_nope·k_nope"},
    "chart.attention.grid_title": {
        "en": "Attention of “{name}” ({kind}): rows = query (looks), columns = key (looked at)",
        "ru": "Внимание для «{name}» ({kind}): строки — запрос (смотрит), столбцы — ключ (на кого смотрят)",
    },
    "chart.attention.head": {"en": "head {head}", "ru": "голова {head}"},
    "chart.attention.mean": {"en": "mean of heads", "ru": "среднее по головам"},
    "chart.attention.no_split": {
        "en": "{kind} attention: scores have no content/position split (MLA only).",
        "ru": "Внимание {kind}: оценки не раскладываются на содержание и позицию (только MLA).",
    },
    "chart.attention.position": {"en": "position: q_rope·k_rope", "ru": "позиция: q_rope·k_rope"},
    "chart.attention.score": {"en": "score", "ru": "оценка"},
    "chart.attention.split_title": {
        "en": "Layer {layer}, head {head}: total score = content + position (before softmax)",
        "ru": "Слой {layer}, голова {head}: оценка = содержание + позиция (до softmax)",
    },
    "chart.attention.total": {"en": "total score", "ru": "полная оценка"},
    "chart.attention.weight": {"en": "attention", "ru": "внимание"},
    "chart.selection.dsa_pick": {"en": "top-k pick", "ru": "выбран в top-k"},
    "chart.selection.excluded": {"en": "not allowed to see", "ru": "не разрешено видеть"},
    "chart.selection.kinds": {"en": "the selection", "ru": "выбор"},
    "chart.selection.level_fine": {"en": "level {level}: one by one", "ru": "уровень {level}: посимвольно"},
    "chart.selection.level_pooled": {
        "en": "level {level}: bucket of {size}, pooled", "ru": "уровень {level}: корзина из {size}, среднее",
    },
    "chart.selection.moba_chosen": {"en": "chosen block", "ru": "выбранный блок"},
    "chart.selection.moba_own": {"en": "own block", "ru": "свой блок"},
    "chart.selection.title": {
        "en": "{kind}, layer {layer}, head {head}: what each query saw (grey: left out)",
        "ru": "{kind}, слой {layer}, голова {head}: что видел каждый запрос (серое — исключено)",
    },
    "chart.selection.weights": {"en": "attention weight", "ru": "вес внимания"},
    "chart.cache.block": {"en": "block_size = {n}", "ru": "block_size = {n}"},
    "chart.cache.bytes": {"en": "cache, bytes (float32)", "ru": "кэш, байт (float32)"},
    "chart.cache.col_analytic": {"en": "values / token (Table 1)", "ru": "значений / токен (табл. 1)"},
    "chart.cache.col_attention": {"en": "attention", "ru": "внимание"},
    "chart.cache.col_cached": {"en": "cached per layer and token", "ru": "в кэше на слой и токен"},
    "chart.cache.col_bf16": {"en": "bytes / token (bf16)", "ru": "байт / токен (bf16)"},
    "chart.cache.col_formula": {"en": "formula", "ru": "формула"},
    "chart.cache.col_fp32": {"en": "bytes / token (float32)", "ru": "байт / токен (float32)"},
    "chart.cache.col_gb_128k": {"en": "GB / 128K tokens", "ru": "ГБ / 128K токенов"},
    "chart.cache.col_gb_1k": {"en": "GB / 1K tokens", "ru": "ГБ / 1K токенов"},
    "chart.cache.col_kb_token": {"en": "KB / token", "ru": "КБ / токен"},
    "chart.cache.col_match": {"en": "agree", "ru": "совпадает"},
    "chart.cache.col_measured": {"en": "values / token (measured)", "ru": "значений / токен (измерено)"},
    "chart.cache.col_per_layer": {"en": "values / layer / token", "ru": "значений / слой / токен"},
    "chart.cache.col_per_token": {"en": "values / token", "ru": "значений / токен"},
    "chart.cache.col_vs_mha": {"en": "of MHA", "ru": "от MHA"},
    "chart.cache.growth_title": {
        "en": "KV cache of one sequence, by length (float32)",
        "ru": "KV-кэш одной последовательности по длине (float32)",
    },
    "chart.cache.length": {"en": "sequence length (characters)", "ru": "длина последовательности (символов)"},
    "chart.cache.this_model": {"en": "{kind} (this model)", "ru": "{kind} (эта модель)"},
    # experts page and its charts ------------------------------------------------------------------
    "experts.ablation_caption": {
        "en": "The same {n} names again with the chosen experts switched off; no weight is touched. Bars: change "
              "in next-character loss, grouped by the **target** letter (the character being predicted; “|” = the "
              "end of the name), for letters with at least {min} tokens, most hurt first.",
        "ru": "Те же {n} имён ещё раз, но выбранные эксперты выключены; веса не меняются. Столбцы: изменение "
              "потерь на следующем символе по **целевой** букве (той, которую предсказывают; «|» = конец имени), "
              "для букв, встретившихся не меньше {min} раз, от самых пострадавших.",
    },
    "experts.ablation_intro": {
        "en": "Switch experts off and see what breaks. **Drop** removes their output and nothing replaces it: "
              "what they contributed. **Reroute** makes the router pick other experts instead: can the others "
              "stand in? **Mask top-r** takes away each character's own r favourite experts.",
        "ru": "Выключите экспертов и посмотрите, что сломается. **Убрать** — их вклад просто исчезает, ничто его "
              "не заменяет: видно, что они давали. **Обойти** — роутер выбирает вместо них других: справятся ли "
              "остальные? **Закрыть любимых** — каждому символу запрещены его собственные r любимых эксперта.",
    },
    "experts.ablation_layer": {"en": "In layer", "ru": "В слое"},
    "experts.all_layers": {"en": "all MoE layers", "ru": "все MoE-слои"},
    "experts.damage_ratio": {
        "en": "Hurt most: **{domain}**, loss {delta} nats per character; the other names: {others}. That is "
              "**{ratio}×** as much (a change under 0.001 counts as 0.001).",
        "ru": "Сильнее всего пострадали **{domain}**: потери {delta} нат на символ; у остальных имён: {others}. "
              "Это в **{ratio}** раз больше (изменение меньше 0.001 считается за 0.001).",
    },
    "experts.domain_map_caption": {
        "en": "Row = domain, column = routed expert. Relative load = the expert's share of the domain's choices "
              "divided by an even share (each character picks {k} of {n}): 1 = even, 2 = twice its share, 0 = the "
              "expert never serves that domain (DeepSeek-V3, Fig. 9).",
        "ru": "Строка — домен, столбец — эксперт. Относительная нагрузка — доля эксперта в выборах этого домена, "
              "делённая на равную долю (каждый символ выбирает {k} из {n}): 1 = поровну, 2 = вдвое больше, 0 = "
              "эксперт этот домен не обслуживает (DeepSeek-V3, рис. 9).",
    },
    "experts.domain_mi_caption": {
        "en": "How many bits the chosen experts reveal about the name's domain: 0 = nothing, {ceiling} = everything. "
              "Grey: the same model before training (fresh weights, seed {seed}). A rise over grey is structure "
              "the router learned.",
        "ru": "Сколько бит выбор экспертов говорит о домене имени: 0 — ничего, {ceiling} — всё. Серым — та же "
              "модель до обучения (случайные веса, seed {seed}). Рост над серым — структура, которой роутер "
              "научился.",
    },
    "experts.geometry": {
        "en": "A router sends a character to the experts whose weights point the same way as its hidden state. "
              "Experts split the work by that geometry, not by human-like “expertise”.",
        "ru": "Роутер отправляет символ к тем экспертам, чьи веса смотрят в ту же сторону, что и его скрытое "
              "состояние. Эксперты делят работу по этой геометрии, а не по «специальностям», как люди.",
    },
    "experts.kind": {"en": "How to switch off", "ru": "Как выключить"},
    "experts.kind_drop": {"en": "drop", "ru": "убрать"},
    "experts.kind_drop_help": {
        "en": "The router chooses as usual; the chosen experts' output is removed and the others are not scaled up.",
        "ru": "Роутер выбирает как обычно; вклад выбранных экспертов убирается, остальные не усиливаются.",
    },
    "experts.kind_mask_top": {"en": "mask top-r", "ru": "закрыть любимых"},
    "experts.kind_mask_top_help": {
        "en": "Every character loses its own r highest-scoring experts and picks the next best (DeepSeekMoE §4.5).",
        "ru": "Каждый символ теряет своих r лучших по оценке экспертов и берёт следующих (DeepSeekMoE §4.5).",
    },
    "experts.kind_reroute": {"en": "reroute", "ru": "обойти"},
    "experts.kind_reroute_help": {
        "en": "The chosen experts cannot be picked; the router sends each character to its next best instead.",
        "ru": "Выбранных экспертов брать нельзя; роутер отправляет символ к следующим по очереди.",
    },
    "experts.m_domain_mi": {"en": "I(domain; expert), {layer}", "ru": "I(домен; эксперт), {layer}"},
    "experts.m_domain_mi_initial": {"en": "Same, untrained", "ru": "То же до обучения"},
    "experts.m_domain_ratio": {"en": "Trained / untrained", "ru": "Обученная / необученная"},
    "experts.mask_r": {"en": "r: favourite experts taken away", "ru": "r: сколько любимых экспертов закрыть"},
    "experts.no_domains": {
        "en": "This model's names carry no domains. Pick a model trained on a mixed corpus (e.g. ru-en-names) in "
              "the sidebar, or train one on the Train page; the letter view works for every model.",
        "ru": "У имён этой модели нет доменов. Выберите слева модель, обученную на смешанном корпусе (например, "
              "ru-en-names), или обучите её на странице «Обучение»; вид «Буквы» работает для любой модели.",
    },
    "experts.off_in": {"en": "Experts off in {layer}", "ru": "Выключить экспертов ({layer})"},
    "experts.pick_something": {
        "en": "Pick experts to switch off (or a domain's top experts above), or the shared expert.",
        "ru": "Выберите, каких экспертов выключить (или лучших экспертов домена выше), либо общего эксперта.",
    },
    "experts.routers_caption": {
        "en": "Same corpus, seed, size and steps; only the router differs. DeepSeek-V3 (Fig. 9) found that "
              "aux-loss-free routing lets experts specialise more than an auxiliary balancing loss does.",
        "ru": "Тот же корпус, seed, размер и число шагов; отличается только роутер. В DeepSeek-V3 (рис. 9) "
              "маршрутизация без вспомогательной потери давала экспертам специализироваться сильнее, чем с ней.",
    },
    "experts.routers_intro": {
        "en": "{n} models trained on this corpus, side by side.",
        "ru": "{n} модели, обученные на этом корпусе, рядом.",
    },
    "experts.routers_none": {
        "en": "Only one model here was trained on “{corpus}”. Pick one of the ru-en-… models in the sidebar to "
              "compare the three routers.",
        "ru": "На корпусе «{corpus}» здесь обучена только одна модель. Выберите слева одну из моделей ru-en-…, "
              "чтобы сравнить три роутера.",
    },
    "experts.section": {"en": "View", "ru": "Вид"},
    "experts.section_ablation": {"en": "Switch experts off", "ru": "Выключить экспертов"},
    "experts.section_domains": {"en": "Domains", "ru": "Домены"},
    "experts.section_letters": {"en": "Letters", "ru": "Буквы"},
    "experts.section_routers": {"en": "Router shoot-out", "ru": "Сравнение роутеров"},
    "experts.shared_off": {"en": "Shared expert off too", "ru": "Выключить и общего эксперта"},
    "experts.show_untrained": {"en": "Show the untrained model", "ru": "Показать необученную модель"},
    "experts.open_mixed": {"en": "Open {model}", "ru": "Открыть {model}"},
    "experts.try_mixed": {
        "en": "This model was trained on one kind of name, so its experts can only split letters. On {model}, "
              "trained on Russian and English names together, each language gets its own experts.",
        "ru": "Эта модель обучена на одном виде имён, поэтому её эксперты могут делить только буквы. В модели "
              "{model}, обученной на русских и английских именах вместе, у каждого языка свои эксперты.",
    },
    "experts.top_n": {"en": "Top experts per domain", "ru": "Лучших экспертов домена"},
    "experts.top_of_domain": {"en": "Top experts of {domain}", "ru": "Лучшие эксперты: {domain}"},
    "experts.computing": {
        "en": "Routing the validation names through the trained and an untrained model…",
        "ru": "Пропускаем валидационные имена через обученную и необученную модели…",
    },
    "experts.expert": {"en": "Routed expert", "ru": "Маршрутизируемый эксперт"},
    "experts.intro": {
        "en": "Each character passes the shared expert and **{k} of {n}** routed experts in every MoE layer. "
              "Here are the router's choices over many real names: which domains (e.g. Russian vs English names) "
              "and letters each expert takes, what breaks when experts are switched off, and how the three "
              "routers compare.",
        "ru": "Каждый символ в каждом MoE-слое проходит через общего эксперта и **{k} из {n}** "
              "маршрутизируемых. Здесь — выбор роутера на множестве настоящих имён: какие домены (например, "
              "русские и английские имена) и буквы берёт каждый эксперт, что ломается, если экспертов выключить, "
              "и как отличаются три роутера.",
    },
    "experts.layer": {"en": "MoE layer", "ru": "MoE-слой"},
    "experts.letters_caption": {
        "en": "Row = the input character (“|” = the boundary at the start), column = routed expert, colour = "
              "share of that character's tokens sent to the expert; each row sums to 1. The input at position i "
              "is the character at i, so the end of a name is never an input. The shared expert takes every token "
              "and is not drawn. Letters are grouped by script and case, and sorted by the expert they prefer, so "
              "letters that share experts sit together. Letter information can fall with training: an untrained "
              "router already sends each letter to fixed experts, and training makes the choice depend on the "
              "context too.",
        "ru": "Строка — входной символ («|» — граница в начале имени), столбец — эксперт, цвет — доля токенов "
              "этого символа, ушедших к эксперту; сумма по строке равна 1. На входе в позиции i стоит символ i, "
              "поэтому конец имени на вход не подаётся. Общий эксперт получает все токены и не показан. Буквы "
              "сгруппированы по алфавиту и регистру и упорядочены по любимому эксперту, так что буквы с общими "
              "экспертами стоят рядом. Информация о буквах может падать при обучении: необученный роутер уже "
              "отправляет каждую букву к одним и тем же экспертам, а обучение делает выбор зависимым и от контекста.",
    },
    "experts.letters_title": {"en": "Letter × expert", "ru": "Буква × эксперт"},
    "experts.load_caption": {
        "en": "Share of all routed assignments per expert; the dashed line is perfect balance. Dropped tokens: "
              "{dropped}. At inference no capacity limit applies (a capacity factor, if set, acts only in "
              "training), so nothing is ever dropped here.",
        "ru": "Доля всех назначений на каждого эксперта; пунктир — идеальный баланс. Отброшено токенов: "
              "{dropped}. При выводе ограничения ёмкости нет (capacity factor, если задан, действует только при "
              "обучении), поэтому здесь ничего не отбрасывается.",
    },
    "experts.load_title": {"en": "Expert load", "ru": "Нагрузка на экспертов"},
    "experts.m_loss_off": {"en": "Loss, experts off", "ru": "Потери без этих экспертов"},
    "experts.m_loss_on": {"en": "Loss, all experts on", "ru": "Потери, все эксперты"},
    "experts.m_share": {"en": "Characters that used them", "ru": "Символов, что шли к ним"},
    "experts.mi_caption": {
        "en": "Mutual information I(letter; expert) in bits, from the all-k counts: 0 = the router ignores the "
              "letter; the ceiling log2(E/k) = {ceiling} bits is reached when every letter always goes to its own "
              "k experts. Grey: the same architecture freshly initialised (seed {seed}), never trained. A random "
              "router already sends each letter to fixed experts (its input is mostly that letter's embedding), "
              "so a high untrained score is a hash, not knowledge; training makes routing depend on the context "
              "as well, which can lower this score.",
        "ru": "Взаимная информация I(буква; эксперт) в битах по счётчикам all-k: 0 — роутер не смотрит на букву; "
              "потолок log2(E/k) = {ceiling} бит достигается, когда каждая буква всегда идёт к своим k экспертам. "
              "Серым — та же архитектура со свежей инициализацией (seed {seed}), без обучения. Случайный роутер "
              "уже отправляет каждую букву к одним и тем же экспертам (на его входе в основном эмбеддинг буквы), "
              "так что высокий балл без обучения — это хеш, а не знание; обучение делает маршрут зависимым и от "
              "контекста, и балл может снизиться.",
    },
    "experts.mi_title": {"en": "Specialisation", "ru": "Специализация"},
    "experts.names_caption": {
        "en": "{n} names with the same seed ({seed}) and temperature ({temperature}) for both lists, name by name: "
              "any difference (in bold) comes from the switched-off experts.",
        "ru": "{n} имён с одинаковыми seed ({seed}) и температурой ({temperature}) для обоих списков, имя за "
              "именем: любое различие (жирным) — из-за выключенных экспертов.",
    },
    "experts.names_off": {"en": "Names, {what}", "ru": "Имена: {what}"},
    "experts.names_on": {"en": "Names, all experts on", "ru": "Имена, все эксперты"},
    "experts.pick_caption": {
        "en": "A token counts for the expert when the expert is among its top-{k}. Context = up to two previous "
              "characters + the current one: “|Ан” is “Ан” at the start of a name, “…ов” is “ов” after earlier "
              "characters. Hover a context for the character that most often came next.",
        "ru": "Токен засчитывается эксперту, если тот среди его top-{k}. Контекст — до двух предыдущих символов "
              "+ текущий: «|Ан» — «Ан» в начале имени, «…ов» — «ов» после других символов. Наведите на "
              "контекст, чтобы увидеть, какой символ чаще всего шёл следом.",
    },
    "experts.pick_title": {"en": "What one expert handles", "ru": "Что обрабатывает один эксперт"},
    "experts.positions_caption": {
        "en": "Input positions of a name of n letters: **start** = position 0, the boundary “|” (it predicts "
              "the first letter); **first** = position 1 (a one-letter name's letter counts here); **middle** = "
              "positions 2 … n−1; **last** = position n (it predicts the end of the name). Rows sum to 1.",
        "ru": "Входные позиции имени из n букв: **начало** — позиция 0, граница «|» (по ней предсказывают "
              "первую букву); **первая** — позиция 1 (буква однобуквенного имени тоже здесь); **середина** — "
              "позиции 2 … n−1; **последняя** — позиция n (по ней предсказывают конец имени). Сумма по строке — 1.",
    },
    "experts.positions_title": {"en": "Position in the name × expert", "ru": "Позиция в имени × эксперт"},
    "experts.sample": {
        "en": "Measured on {n} validation names of “{corpus}” (names the model never trained on): {tokens} input "
              "characters, each routed once per MoE layer.",
        "ru": "Измерено на {n} валидационных именах корпуса «{corpus}» (на них модель не обучалась): {tokens} "
              "входных символов, каждый маршрутизирован один раз в каждом MoE-слое.",
    },
    "experts.title": {"en": "Which experts handle what", "ru": "Какие эксперты чем заняты"},
    "experts.view": {"en": "Count each token", "ru": "Как считать токен"},
    "experts.view_allk": {"en": "all-k (1/k to each chosen expert)", "ru": "all-k (по 1/k каждому выбранному)"},
    "experts.view_top1": {"en": "top-1 (highest gate weight)", "ru": "top-1 (наибольший вес гейта)"},
    "chart.experts.ablation_empty": {
        "en": "No target letter occurs often enough to compare.",
        "ru": "Ни одна целевая буква не встречается достаточно часто для сравнения.",
    },
    "chart.experts.ablation_hover": {
        "en": "target “{letter}” ({count} tokens)<br>loss {on} → {off} (Δ {delta})",
        "ru": "цель «{letter}» ({count} токенов)<br>потери {on} → {off} (Δ {delta})",
    },
    "chart.experts.ablation_title": {
        "en": "{what}: loss {on} → {off} nats/char",
        "ru": "{what}: потери {on} → {off} нат/символ",
    },
    "chart.ablation.what_drop": {"en": "drop experts {experts} in {layer}", "ru": "убрать экспертов {experts} ({layer})"},
    "chart.ablation.what_mask_top": {
        "en": "mask each token's top {r} experts ({layers})",
        "ru": "закрыть каждому токену его {r} любимых эксперта ({layers})",
    },
    "chart.ablation.what_reroute": {
        "en": "reroute around experts {experts} in {layer}",
        "ru": "обойти экспертов {experts} ({layer})",
    },
    "chart.ablation.what_shared": {"en": "shared expert off ({layers})", "ru": "общий эксперт выключен ({layers})"},
    "chart.domain_mi.initial": {"en": "same model, untrained (highest layer)", "ru": "та же модель без обучения (макс. по слоям)"},
    "chart.domain_mi.no_steps": {
        "en": "No evaluation step has measured I(domain; expert) yet.",
        "ru": "Ни один шаг оценки ещё не измерил I(домен; эксперт).",
    },
    "chart.domain_mi.title": {
        "en": "Do the experts split the names by domain? I(domain; expert) per MoE layer",
        "ru": "Делят ли эксперты имена по доменам? I(домен; эксперт) по MoE-слоям",
    },
    "chart.domains.ceiling": {"en": "ceiling H(domain) = {bits} bits", "ru": "потолок H(домен) = {bits} бит"},
    "chart.domains.damage_title": {
        "en": "Change in loss per domain with these experts off",
        "ru": "Изменение потерь по доменам без этих экспертов",
    },
    "chart.domains.hover": {
        "en": "{domain} · {layer} · expert {expert}<br>relative load {load} (1 = even share)",
        "ru": "{domain} · {layer} · эксперт {expert}<br>относительная нагрузка {load} (1 = поровну)",
    },
    "chart.domains.load": {"en": "relative load", "ru": "относит. нагрузка"},
    "chart.domains.mi_title": {
        "en": "How much the chosen experts tell about the domain: I(domain; expert)",
        "ru": "Сколько выбор экспертов говорит о домене: I(домен; эксперт)",
    },
    "chart.domains.none": {"en": "These names have no domain labels.", "ru": "У этих имён нет меток доменов."},
    "chart.domains.title": {
        "en": "Domain × expert: relative load (1 = even share, red = favours the domain)",
        "ru": "Домен × эксперт: относительная нагрузка (1 = поровну, красный = предпочитает домен)",
    },
    "chart.domains.title_initial": {
        "en": "The same, untrained model (fresh initialisation)",
        "ru": "То же для необученной модели (случайная инициализация)",
    },
    "chart.experts.bits": {"en": "bits", "ru": "бит"},
    "chart.experts.cat_first": {"en": "first letter", "ru": "первая буква"},
    "chart.experts.cat_last": {"en": "last letter", "ru": "последняя буква"},
    "chart.experts.cat_middle": {"en": "middle", "ru": "середина"},
    "chart.experts.cat_start": {"en": "start “|”", "ru": "начало «|»"},
    "chart.experts.ceiling": {"en": "ceiling log2(E/k) = {bits}", "ru": "потолок log2(E/k) = {bits}"},
    "chart.experts.context_hover": {
        "en": "“{context}”: {count} tokens ({share} of the expert's)<br>next most often “{next}” ({next_share})",
        "ru": "«{context}»: {count} токенов ({share} от эксперта)<br>дальше чаще всего «{next}» ({next_share})",
    },
    "chart.experts.delta_loss": {"en": "Δ loss (nats)", "ru": "Δ потерь (нат)"},
    "chart.experts.expert_axis": {"en": "routed expert", "ru": "эксперт"},
    "chart.experts.idle": {"en": "Expert {expert} received no tokens.", "ru": "Эксперт {expert} не получил ни одного токена."},
    "chart.experts.initial": {"en": "untrained (same config)", "ru": "без обучения (та же конфигурация)"},
    "chart.experts.letter_hover": {
        "en": "“{letter}”: {count} tokens, {share} of the expert's<br>{of_letter} of all “{letter}” tokens",
        "ru": "«{letter}»: {count} токенов, {share} от эксперта<br>{of_letter} от всех токенов «{letter}»",
    },
    "chart.experts.letters_title_allk": {
        "en": "Where each character's tokens go (all-k: 1/{k} per choice)",
        "ru": "Куда идут токены каждого символа (all-k: 1/{k} на выбор)",
    },
    "chart.experts.letters_title_top1": {
        "en": "Where each character's tokens go (top-1 of {k}: highest gate weight)",
        "ru": "Куда идут токены каждого символа (top-1 из {k}: наибольший вес гейта)",
    },
    "chart.experts.load_title": {
        "en": "Share of assignments per expert (dropped: {dropped})",
        "ru": "Доля назначений на эксперта (отброшено: {dropped})",
    },
    "chart.experts.mi_title": {
        "en": "I(letter; expert) per MoE layer, bits (all-k counts)",
        "ru": "I(буква; эксперт) по MoE-слоям, бит (счётчики all-k)",
    },
    "chart.experts.positions_title_allk": {
        "en": "Where tokens go by position in the name (all-k: 1/{k} per choice)",
        "ru": "Куда идут токены по позиции в имени (all-k: 1/{k} на выбор)",
    },
    "chart.experts.positions_title_top1": {
        "en": "Where tokens go by position in the name (top-1 of {k})",
        "ru": "Куда идут токены по позиции в имени (top-1 из {k})",
    },
    "chart.experts.profile_title": {
        "en": "Expert {expert} of {layer}: {n} tokens ({share} of all)",
        "ru": "Эксперт {expert} ({layer}): {n} токенов ({share} от всех)",
    },
    "chart.experts.share": {"en": "share", "ru": "доля"},
    "chart.experts.share_hover": {
        "en": "“{row}” ({count} tokens) · {layer}<br>expert {expert}: share {share}",
        "ru": "«{row}» ({count} токенов) · {layer}<br>эксперт {expert}: доля {share}",
    },
    "chart.experts.share_of_expert": {"en": "share of the expert's tokens", "ru": "доля токенов эксперта"},
    "chart.experts.target_letter": {"en": "target letter (being predicted)", "ru": "целевая буква (предсказываемая)"},
    "chart.experts.top_contexts": {"en": "contexts (previous + current)", "ru": "контексты (предыдущие + текущий)"},
    "chart.experts.top_letters": {"en": "letters", "ru": "буквы"},
    "chart.experts.trained": {"en": "trained", "ru": "обученная"},
    # lesson page ---------------------------------------------------------------------------------
    "lesson.back": {"en": "Back", "ru": "Назад"},
    "lesson.intro": {
        "en": "Seven short steps for a class. Each step has one thing to do, a live chart and one thing to notice; "
              "the button under the chart opens the full page with the right model.",
        "ru": "Семь коротких шагов для урока. В каждом — одно задание, живой график и одна вещь, на которую стоит "
              "обратить внимание; кнопка под графиком открывает полную страницу с нужной моделью.",
    },
    "lesson.missing": {
        "en": "This step needs the model **{name}**, which is not in the checkpoints folder. Train it again with "
              "this command in the project folder, then reload the page:",
        "ru": "Для этого шага нужна модель **{name}**, а в папке checkpoints её нет. Обучите её заново этой командой "
              "в папке проекта и обновите страницу:",
    },
    "lesson.next": {"en": "Next", "ru": "Далее"},
    "lesson.notice": {"en": "**What to notice:** {text}", "ru": "**На что обратить внимание:** {text}"},
    "lesson.open": {"en": "Open the {page} page", "ru": "Открыть страницу «{page}»"},
    "lesson.progress": {"en": "Step {step} of {total}", "ru": "Шаг {step} из {total}"},
    "lesson.s1.do": {
        "en": "Read the names the model wrote starting with «{prefix}». Then follow the first one, «{name}», through "
              "the chart letter by letter.",
        "ru": "Прочитайте имена, которые модель написала, начиная с «{prefix}». Потом проследите на графике первое "
              "из них, «{name}», буква за буквой.",
    },
    "lesson.s1.names": {"en": "Names starting with «{prefix}»: {names}", "ru": "Имена на «{prefix}»: {names}"},
    "lesson.s1.notice": {
        "en": "Each letter goes to {k} of the {n} routed experts (the blue cells) plus the shared expert that always "
              "works, and the choice changes from letter to letter.",
        "ru": "Каждая буква попадает к {k} из {n} экспертов-специалистов (синие клетки) и к общему эксперту, который "
              "работает всегда, и выбор меняется от буквы к букве.",
    },
    "lesson.s1.title": {"en": "1. The experts behind each letter", "ru": "1. Эксперты за каждой буквой"},
    "lesson.s2.do": {
        "en": "Press «{button}» a few times: each press adds the character the model finds most likely (the red bar).",
        "ru": "Нажмите «{button}» несколько раз: каждое нажатие добавляет символ, который модель считает самым "
              "вероятным (красный столбик).",
    },
    "lesson.s2.notice": {
        "en": "The model is never completely sure: the bars share the chances among several characters, and the "
              "end-of-name mark “|” competes with the letters.",
        "ru": "Модель никогда не уверена до конца: шансы делятся между несколькими символами, а знак конца имени "
              "«|» соревнуется с буквами.",
    },
    "lesson.s2.read": {
        "en": "The model has just read «{char}». Experts it chose for it:",
        "ru": "Модель только что прочитала «{char}». Эксперты, которых она для этого выбрала:",
    },
    "lesson.s2.title": {"en": "2. One character at a time", "ru": "2. По одному символу"},
    "lesson.s3.do": {
        "en": "Look at the map of a model trained on Russian and English names mixed together: one row per "
              "language, one column per expert; red means the expert gets more than its fair share of that language.",
        "ru": "Посмотрите на карту модели, обученной на смеси русских и английских имён: строка — язык, столбец — "
              "эксперт; красный цвет значит, что эксперт получает от этого языка больше своей обычной доли.",
    },
    "lesson.s3.notice": {
        "en": "Some experts take almost only Russian (Cyrillic) names and others English ones; the bars below measure "
              "this split, and the untrained model (grey bars) shows almost none.",
        "ru": "Одни эксперты берут почти только русские (кириллические) имена, другие — английские; столбики ниже "
              "измеряют это разделение, и у необученной модели (серые столбики) его почти нет.",
    },
    "lesson.s3.title": {"en": "3. Russian experts and English experts", "ru": "3. Русские эксперты и английские"},
    "lesson.s4.bold": {"en": "**Bold**: names that changed.", "ru": "**Жирным** — имена, которые изменились."},
    "lesson.s4.do": {
        "en": "Here the {n} favourite experts of Russian names are switched off in every layer. Compare how much "
              "harder each language became to predict (a taller bar means more damage), and the names written "
              "before and after.",
        "ru": "Здесь в каждом слое выключены {n} любимых эксперта русских имён. Сравните, насколько труднее модели "
              "стало предсказывать каждый язык (чем выше столбик, тем больше вред), и имена до и после.",
    },
    "lesson.s4.notice": {
        "en": "Switching these experts off hurts Russian names {ratio} times as much as English ones: the model "
              "relied on them for Russian.",
        "ru": "Выключение этих экспертов вредит русским именам в {ratio} раза сильнее, чем английским: именно на них "
              "модель опиралась в русских именах.",
    },
    "lesson.s4.notice_only": {
        "en": "Switching these experts off hurts only Russian names: English names are predicted as well as before.",
        "ru": "Выключение этих экспертов вредит только русским именам: английские модель предсказывает так же, как "
              "раньше.",
    },
    "lesson.s4.title": {"en": "4. Switch off the Russian experts", "ru": "4. Выключаем русских экспертов"},
    "lesson.s5.do": {
        "en": "Three models learned the same names with the same settings; only the router, the part that picks the "
              "experts, differs. Compare the bars: their height in bits says how much the choice of expert tells "
              "about the language (1 bit would tell it exactly).",
        "ru": "Три модели учились на одних и тех же именах с одинаковыми настройками; отличается только роутер — "
              "часть, которая выбирает экспертов. Сравните столбики: их высота в битах показывает, сколько выбор "
              "эксперта говорит о языке имени (1 бит — говорит точно).",
    },
    "lesson.s5.notice": {
        "en": "Here the {router} router separates the languages most: {bits} bits in layer {layer}, against "
              "{initial} bits for the untrained model (grey marks).",
        "ru": "Здесь лучше всех разделяет языки роутер «{router}»: {bits} бит в слое {layer} против {initial} бит у "
              "необученной модели (серые отметки).",
    },
    "lesson.s5.title": {"en": "5. Which router splits the work best?", "ru": "5. Какой роутер лучше делит работу?"},
    "lesson.s6.do": {
        "en": "Open the Train page (the mixed Russian and English names are already chosen), press «{start}» and "
              "watch for a minute how much the choice of expert tells about the language as the model learns.",
        "ru": "Откройте страницу «Обучение» (смесь русских и английских имён там уже выбрана), нажмите «{start}» и "
              "минуту понаблюдайте, как с обучением выбор эксперта всё больше говорит о языке имени.",
    },
    "lesson.s6.expect": {
        "en": "What to expect: the same curve, recorded while the shipped model {name} trained.",
        "ru": "Чего ждать: та же кривая, записанная при обучении готовой модели {name}.",
    },
    "lesson.s6.flat": {
        "en": "In this recording the coloured curves stayed at the grey untrained line: these experts did not split "
              "the languages.",
        "ru": "В этой записи цветные линии остались на уровне серой линии необученной модели: эти эксперты языки "
              "не разделили.",
    },
    "lesson.s6.no_history": {
        "en": "The model **{name}** was saved before the app recorded this curve during training, so there is "
              "nothing to show here; on the Train page the curve appears live, under the loss chart.",
        "ru": "Модель **{name}** сохранили до того, как приложение стало записывать эту кривую при обучении, поэтому "
              "здесь показать нечего; на странице «Обучение» кривая появится вживую, под графиком потерь.",
    },
    "lesson.s6.notice": {
        "en": "The coloured curves climb above the grey untrained line early: first at step {step}, after "
              "{seconds} seconds of training.",
        "ru": "Цветные линии рано поднимаются над серой линией необученной модели: впервые на шаге {step}, через "
              "{seconds} с обучения.",
    },
    "lesson.s6.start": {"en": "Start on the Train page", "ru": "Начать на странице «Обучение»"},
    "lesson.s6.title": {"en": "6. Train your own in one minute", "ru": "6. Обучите свою модель за минуту"},
    "lesson.s7.do": {
        "en": "Back to the Russian names model: look at how much the choice of expert tells about the letter being "
              "read, trained (blue) against untrained (grey).",
        "ru": "Вернёмся к модели русских имён: посмотрите, сколько выбор эксперта говорит о прочитанной букве — у "
              "обученной модели (голубые столбики) и у необученной (серые).",
    },
    "lesson.s7.notice": {
        "en": "Letter information can be lower after training than before, because a random router already sends "
              "each letter to fixed experts while training makes the choice depend on the letters around it, and "
              "that is why this lesson measured languages.",
        "ru": "После обучения буквенная информация может стать даже ниже, чем до него: случайный роутер и так "
              "отправляет каждую букву к одним и тем же экспертам, а обучение делает выбор зависящим от соседних "
              "букв, — поэтому в этом уроке мы измеряли языки.",
    },
    "lesson.s7.title": {"en": "7. Letters or languages?", "ru": "7. Буквы или языки?"},
    "lesson.title": {"en": "Lesson: how a mini DeepSeek shares the work", "ru": "Урок: как мини-DeepSeek делит работу"},
    # mtp page + compare page (and their charts) --------------------------------------------------
    "mtp.title": {"en": "MTP drafts: does the guess for the character after next hold?", "ru": "MTP-черновики: сбывается ли догадка о символе через один?"},
    "mtp.intro": {
        "en": "At inference the depth-1 **MTP** head reads the main model's last hidden state and the character "
              "just chosen, and drafts the character **after next**. The next main-model pass checks that draft "
              "while it computes the next character anyway: an accepted draft gives two characters for one pass, "
              "a rejected one is replaced by the main model's own choice, so the names never change. DeepSeek-V3 "
              "(§2.2, §5.4.3) reports **85–90%** acceptance of the second token and **1.8×** tokens per second.",
        "ru": "При генерации голова **MTP** глубины 1 читает последнее скрытое состояние основной модели и только что "
              "выбранный символ и предлагает черновик символа **через один**. Следующий проход основной модели "
              "проверяет черновик, вычисляя заодно следующий символ: принятый черновик даёт два символа за один "
              "проход, отклонённый заменяется выбором основной модели, так что имена не меняются. DeepSeek-V3 "
              "(§2.2, §5.4.3) сообщает о **85–90%** принятых вторых токенов и ускорении в **1,8×** по токенам в секунду.",
    },
    "mtp.no_mtp": {
        "en": "This model has no MTP head (mtp_depth = 0): nothing drafts the character after next, so there is "
              "nothing to accept. Train a model with MTP depth ≥ 1 on the Train page.",
        "ru": "У этой модели нет головы MTP (mtp_depth = 0): черновик символа через один никто не предлагает, "
              "принимать нечего. Обучите модель с глубиной MTP ≥ 1 на странице «Обучение».",
    },
    "mtp.n_prefixes": {"en": "Prefixes (one name each)", "ru": "Префиксов (по имени на каждый)"},
    "mtp.n_prefixes_help": {
        "en": "First letters and letter pairs of validation names (names the model never trained on).",
        "ru": "Первые буквы и пары букв имён из валидации (этих имён модель при обучении не видела).",
    },
    "mtp.temperature": {"en": "Temperature of the sampled run", "ru": "Температура для случайной генерации"},
    "mtp.temperature_help": {
        "en": "The greedy run is always temperature 0. A sampled draft is accepted with probability min(1, p/q) "
              "(speculative sampling), so the names keep the main model's distribution.",
        "ru": "Жадная генерация всегда идёт при температуре 0. Случайный черновик принимается с вероятностью "
              "min(1, p/q) (спекулятивное сэмплирование), поэтому распределение имён остаётся как у основной модели.",
    },
    "mtp.seed": {"en": "Seed", "ru": "Зерно (seed)"},
    "mtp.source_val": {
        "en": "Prefixes from the validation names of {corpus}: {examples}",
        "ru": "Префиксы из валидационных имён корпуса {corpus}: {examples}",
    },
    "mtp.source_alphabet": {
        "en": "The corpus of this model ({corpus}) is not available here; prefixes are letters of its alphabet: {examples}",
        "ru": "Корпус этой модели ({corpus}) здесь недоступен; префиксы — буквы её алфавита: {examples}",
    },
    "mtp.spinner": {"en": "Decoding {n} names greedily and sampled…", "ru": "Генерирую {n} имён жадно и случайно…"},
    "mtp.m_greedy": {"en": "Acceptance, greedy", "ru": "Принято, жадно"},
    "mtp.m_sampled": {"en": "Acceptance, T = {temperature}", "ru": "Принято, T = {temperature}"},
    "mtp.m_acceptance_help": {
        "en": "Accepted drafts / proposed drafts: {accepted} of {proposed}. DeepSeek-V3: 85–90%.",
        "ru": "Принятые черновики / предложенные: {accepted} из {proposed}. DeepSeek-V3: 85–90%.",
    },
    "mtp.m_cpf": {"en": "Chars/pass, greedy", "ru": "Символов/проход, жадно"},
    "mtp.m_cpf_sampled": {"en": "Chars/pass, T = {temperature}", "ru": "Символов/проход, T = {temperature}"},
    "mtp.m_cpf_help": {
        "en": "Generated characters (the end of name included) / main-model forward passes (prefill included): "
              "{tokens} / {passes}. Plain decoding makes exactly 1; depth-1 drafts allow up to 2.",
        "ru": "Сгенерированные символы (с концом имени) / проходы основной модели (с префиллом): {tokens} / {passes}. "
              "Обычная генерация даёт ровно 1; черновики глубины 1 — до 2.",
    },
    "mtp.m_identical": {"en": "Identical to plain greedy", "ru": "Совпадает с обычной жадной"},
    "mtp.m_identical_help": {
        "en": "Greedy speculative decoding must give exactly the names of plain greedy decoding "
              "(generate with temperature 0): a draft only saves passes, the main model decides every character.",
        "ru": "Жадное спекулятивное декодирование обязано давать ровно те же имена, что обычное жадное "
              "(generate с температурой 0): черновик лишь экономит проходы, каждый символ решает основная модель.",
    },
    "mtp.depth_title": {"en": "Every depth, teacher-forced", "ru": "Каждая глубина с подсказкой истинных символов"},
    "mtp.depth_caption": {
        "en": "On {n} validation names, fed the true characters: how often the main model's top guess for the next "
              "character is right, and how often MTP module k's guess for the character k + 1 ahead is (DeepSeek-V3 "
              "§2.2: module k sees the true characters up to k ahead). Only depth 1 drafts when generating.",
        "ru": "На {n} проверочных именах, с истинными символами на входе: как часто лучшая догадка основной модели о "
              "следующем символе верна и как часто верна догадка MTP-модуля k о символе на k + 1 вперёд (DeepSeek-V3 "
              "§2.2: модуль k видит истинные символы до k вперёд). При генерации черновики даёт только глубина 1.",
    },
    "mtp.depth_main": {"en": "main model", "ru": "основная модель"},
    "mtp.depth_module": {"en": "MTP module {depth}", "ru": "MTP-модуль {depth}"},
    "mtp.depth_target": {"en": "the character {ahead} ahead", "ru": "символ на {ahead} вперёд"},
    "mtp.depth_unknown": {
        "en": "The validation names of this checkpoint are not available, so the accuracy per depth cannot be measured.",
        "ru": "Проверочные имена этого чекпойнта недоступны, поэтому точность по глубинам не измерить.",
    },
    "mtp.col_depth": {"en": "who predicts", "ru": "кто предсказывает"},
    "mtp.col_predicts": {"en": "what", "ru": "что"},
    "mtp.col_accuracy": {"en": "top-1 accuracy", "ru": "точность top-1"},
    "mtp.col_positions": {"en": "positions", "ru": "позиций"},
    "mtp.by_position": {"en": "Acceptance by position in the name", "ru": "Доля принятых по позиции в имени"},
    "mtp.by_letter": {"en": "Acceptance by drafted letter", "ru": "Доля принятых по предложенной букве"},
    "mtp.by_letter_caption": {
        "en": "Grouped by the character the MTP head proposes (not the one before it); | = it proposed ending the name.",
        "ru": "Сгруппировано по символу, который предлагает голова MTP (а не по предыдущему); | — она предложила закончить имя.",
    },
    "mtp.timeline": {"en": "One generation, draft by draft", "ru": "Одна генерация, черновик за черновиком"},
    "mtp.timeline_prefix": {"en": "Prefix", "ru": "Префикс"},
    "mtp.timeline_run": {"en": "Run", "ru": "Запуск"},
    "mtp.run_greedy": {"en": "greedy", "ru": "жадно"},
    "mtp.run_sampled": {"en": "sampled, T = {temperature}", "ru": "случайно, T = {temperature}"},
    "mtp.speed": {"en": "Wall-clock speed-up", "ru": "Ускорение по времени"},
    "mtp.speed_caption": {
        "en": "Greedy speculative vs plain greedy decoding over the same {n} prefixes, one name at a time "
              "(batch 1), median of {repeats} sweeps, inference mode. Drafting saves main-model passes, but the MTP "
              "head runs its own block every round and each pass here costs mostly Python and kernel-launch overhead, "
              "so a tiny model on a CPU need not see DeepSeek-V3's 1.8×.",
        "ru": "Жадное спекулятивное против обычного жадного декодирования на тех же {n} префиксах, по одному имени "
              "(batch 1), медиана {repeats} прогонов, режим inference. Черновики экономят проходы основной модели, "
              "но голова MTP каждый раунд запускает свой блок, а проход здесь стоит в основном накладных расходов "
              "Python и запуска ядер, так что крошечная модель на CPU не обязана показать 1,8× DeepSeek-V3.",
    },
    "mtp.speed_button": {"en": "Measure (a few seconds)", "ru": "Измерить (несколько секунд)"},
    "mtp.speed_spinner": {"en": "Timing {repeats} sweeps of each decoder…", "ru": "Замеряю {repeats} прогона каждого способа…"},
    "mtp.m_spec_speed": {"en": "Speculative, chars/s", "ru": "Спекулятивно, символов/с"},
    "mtp.m_plain_speed": {"en": "Plain greedy, chars/s", "ru": "Обычно, символов/с"},
    "mtp.m_speedup": {"en": "Speed-up", "ru": "Ускорение"},
    "mtp.m_speedup_help": {
        "en": "Plain time / speculative time for the same {tokens} characters. DeepSeek-V3: 1.8×.",
        "ru": "Время обычной / время спекулятивной генерации для тех же {tokens} символов. DeepSeek-V3: 1,8×.",
    },
    "cmp.title": {"en": "Compare two models", "ru": "Сравнение двух моделей"},
    "cmp.intro": {
        "en": "Pick two checkpoints (or the same one twice) and see their configurations, sizes, losses, "
              "KV-cache costs and names from the same prefix, seed and temperature side by side.",
        "ru": "Выберите два чекпойнта (или один и тот же дважды) и сравните конфигурации, размеры, потери, "
              "цену KV-кэша и имена из одного префикса, зерна и температуры.",
    },
    "cmp.model_a": {"en": "Model A", "ru": "Модель A"},
    "cmp.model_b": {"en": "Model B", "ru": "Модель B"},
    "cmp.need_two": {
        "en": "There is only one checkpoint; it is compared with itself. Train another on the Train page.",
        "ru": "Чекпойнт только один; он сравнивается сам с собой. Обучите ещё один на странице «Обучение».",
    },
    "cmp.facts": {"en": "Size, loss and KV cache", "ru": "Размер, потери и KV-кэш"},
    "cmp.config": {"en": "Configuration", "ru": "Конфигурация"},
    "cmp.config_caption": {
        "en": "Highlighted rows differ: {n} of {total} fields.",
        "ru": "Подсвечены различающиеся строки: {n} из {total} полей.",
    },
    "cmp.col_field": {"en": "field", "ru": "поле"},
    "cmp.only_differing": {"en": "Only fields that differ", "ru": "Только различающиеся поля"},
    "cmp.col_differs": {"en": "≠", "ru": "≠"},
    "cmp.fact.corpus": {"en": "corpus", "ru": "корпус"},
    "cmp.fact.steps": {"en": "training steps", "ru": "шагов обучения"},
    "cmp.fact.params_main_total": {"en": "parameters, main model", "ru": "параметров, основная модель"},
    "cmp.fact.params_main_active": {"en": "active parameters per char, main", "ru": "активных параметров на символ, основная"},
    "cmp.fact.params_mtp_total": {"en": "parameters, MTP modules", "ru": "параметров, модули MTP"},
    "cmp.fact.params_mtp_active": {"en": "active parameters per char, MTP", "ru": "активных параметров на символ, MTP"},
    "cmp.fact.val_loss": {"en": "val loss, last (nats/char)", "ru": "потери на валидации, последние (нат/символ)"},
    "cmp.fact.best_val_loss": {"en": "val loss, best (nats/char)", "ru": "потери на валидации, лучшие (нат/символ)"},
    "cmp.fact.cache_values_per_token": {"en": "KV-cache values per token", "ru": "значений KV-кэша на токен"},
    "cmp.fact.cache_bytes_per_token": {"en": "KV-cache bytes per token", "ru": "байт KV-кэша на токен"},
    "cmp.generate": {"en": "Same prefix, same seed", "ru": "Один префикс, одно зерно"},
    "cmp.prefix": {"en": "Prefix", "ru": "Префикс"},
    "cmp.count": {"en": "How many", "ru": "Сколько"},
    "cmp.seed": {"en": "Seed", "ru": "Зерно (seed)"},
    "cmp.temperature": {"en": "Temperature", "ru": "Температура"},
    "cmp.oov": {
        "en": "This model never saw {chars}: no names for this prefix.",
        "ru": "Эта модель не знает символов {chars}: для такого префикса имён нет.",
    },
    "cmp.score_title": {"en": "Both scored on the same names", "ru": "Обе модели на одних и тех же именах"},
    "cmp.score_caption": {
        "en": "Loss per character on one list of names: every character counts, the first one predicted from the "
              "start and the end of the name too (as `python -m dsmini eval` counts). A built-in corpus gives its "
              "held-out test split, which a model trained on it with the default settings never saw; a file you "
              "upload counts every line. Lower is better.",
        "ru": "Потери на символ на одном списке имён: считается каждый символ, первый — предсказанный от начала, "
              "и конец имени тоже (как считает `python -m dsmini eval`). Встроенный корпус даёт отложенную "
              "тестовую часть, которую модель, обученная на нём с настройками по умолчанию, не видела; "
              "в загруженном файле считается каждая строка. Чем меньше, тем лучше.",
    },
    "cmp.score_corpus": {"en": "Names to score", "ru": "Какие имена оценить"},
    "cmp.score_upload": {"en": "…or a file of your own", "ru": "…или свой файл"},
    "cmp.score_upload_help": {
        "en": "A .txt file, one name (or name<TAB>domain) per line.",
        "ru": "Файл .txt, по одному имени (или имя<TAB>домен) в строке.",
    },
    "cmp.score_by": {"en": "Rows", "ru": "Строки"},
    "cmp.score_by_all": {"en": "all names", "ru": "все имена"},
    "cmp.score_by_length": {"en": "by name length", "ru": "по длине имени"},
    "cmp.score_by_domain": {"en": "by domain", "ru": "по доменам"},
    "cmp.score_button": {"en": "Score both", "ru": "Оценить обе"},
    "cmp.score_held_out": {
        "en": "{n} held-out test names of {corpus} (at most 2,000, a random sample of its test split).",
        "ru": "{n} отложенных тестовых имён корпуса {corpus} (не больше 2 000, случайная выборка тестовой части).",
    },
    "cmp.score_file": {"en": "{n} names from {file}.", "ru": "{n} имён из файла {file}."},
    "cmp.score_group": {"en": "group", "ru": "группа"},
    "cmp.score_all": {"en": "all", "ru": "все"},
    "cmp.score_names": {"en": "names", "ru": "имён"},
    "cmp.score_nats": {"en": "{label}: nats/char", "ru": "{label}: нат/символ"},
    "cmp.score_bits": {"en": "{label}: bits/char", "ru": "{label}: бит/символ"},
    "cmp.score_ppl": {"en": "{label}: perplexity", "ru": "{label}: перплексия"},
    "cmp.score_better": {"en": "lower", "ru": "ниже"},
    "cmp.too_long": {
        "en": "The prefix has {n} characters; this model writes names of at most {max_len}.",
        "ru": "В префиксе {n} символов; эта модель пишет имена не длиннее {max_len}.",
    },
    "chart.cmp.cache_bytes": {"en": "KV bytes / token", "ru": "байт KV / токен"},
    "chart.cmp.main_active": {"en": "main, active", "ru": "основная, активных"},
    "chart.cmp.main_total": {"en": "main, total", "ru": "основная, всего"},
    "chart.cmp.mtp_total": {"en": "MTP, total", "ru": "MTP, всего"},
    "chart.cmp.params": {"en": "parameters", "ru": "параметры"},
    "chart.cmp.title": {"en": "{a} vs {b}", "ru": "{a} и {b}"},
    "chart.cmp.val_loss": {"en": "val loss", "ru": "потери (валидация)"},
    "chart.mtp.acceptance": {"en": "drafts accepted", "ru": "принято черновиков"},
    "chart.mtp.accepted": {"en": "accepted draft", "ru": "принятый черновик"},
    "chart.mtp.by_letter_title": {"en": "Acceptance by drafted character", "ru": "Доля принятых по предложенному символу"},
    "chart.mtp.by_position_title": {"en": "Acceptance by position of the drafted character", "ru": "Доля принятых по позиции черновика"},
    "chart.mtp.greedy": {"en": "greedy (T = 0)", "ru": "жадно (T = 0)"},
    "chart.mtp.hover": {
        "en": "{series}: {accepted} of {proposed} accepted ({rate}%)",
        "ru": "{series}: принято {accepted} из {proposed} ({rate}%)",
    },
    "chart.mtp.hover_accepted": {
        "en": "position {pos}: {char}, drafted by MTP and accepted",
        "ru": "позиция {pos}: {char}, черновик MTP принят",
    },
    "chart.mtp.hover_draft": {"en": "position {pos}: MTP drafted {draft} ({verdict})", "ru": "позиция {pos}: черновик MTP {draft} ({verdict})"},
    "chart.mtp.hover_main": {
        "en": "position {pos}: {char}, the main model's own pick",
        "ru": "позиция {pos}: {char}, собственный выбор основной модели",
    },
    "chart.mtp.hover_prefix": {"en": "position {pos}: {char}, typed prefix", "ru": "позиция {pos}: {char}, заданный префикс"},
    "chart.mtp.hover_rejected": {
        "en": "position {pos}: {char}, the main model's correction of the rejected draft {draft}",
        "ru": "позиция {pos}: {char}, исправление основной моделью отклонённого черновика {draft}",
    },
    "chart.mtp.letter": {"en": "drafted character (| = end of name)", "ru": "предложенный символ (| — конец имени)"},
    "chart.mtp.main": {"en": "main model", "ru": "основная модель"},
    "chart.mtp.no_drafts": {"en": "No drafts were proposed.", "ru": "Черновиков не было."},
    "chart.mtp.position": {"en": "position in the name (1 = first character)", "ru": "позиция в имени (1 — первый символ)"},
    "chart.mtp.prefix": {"en": "prefix", "ru": "префикс"},
    "chart.mtp.rejected": {"en": "rejected draft", "ru": "отклонённый черновик"},
    "chart.mtp.row_draft": {"en": "MTP draft", "ru": "черновик MTP"},
    "chart.mtp.row_kept": {"en": "kept", "ru": "в имени"},
    "chart.mtp.sampled": {"en": "sampled (T = {temperature})", "ru": "случайно (T = {temperature})"},
    "chart.mtp.timeline_title": {
        "en": "{name}: {tokens} characters in {passes} main passes ({per_pass} per pass); {accepted} of {proposed} drafts accepted",
        "ru": "{name}: {tokens} символов за {passes} проходов ({per_pass} за проход); принято {accepted} из {proposed} черновиков",
    },
    "chart.mtp.v3_band": {"en": "DeepSeek-V3: 85–90%", "ru": "DeepSeek-V3: 85–90%"},
    # app shell -----------------------------------------------------------------------------------
    "nav.attention": {"en": "Attention", "ru": "Внимание"},
    "nav.compare": {"en": "Compare", "ru": "Сравнение"},
    "nav.experts": {"en": "Experts", "ru": "Эксперты"},
    "nav.generate": {"en": "Generate", "ru": "Генерация"},
    "nav.kv_cache": {"en": "KV cache", "ru": "KV-кэш"},
    "nav.lesson": {"en": "Lesson", "ru": "Урок"},
    "nav.mtp": {"en": "MTP drafts", "ru": "MTP-черновики"},
    "nav.home": {"en": "Home", "ru": "Главная"},
    "nav.train": {"en": "Train", "ru": "Обучение"},
    "ui.broken_checkpoints": {
        "en": "Not listed, could not be read ({n}): {details}",
        "ru": "Не показаны, не удалось прочитать ({n}): {details}",
    },
    "ui.checkpoint": {"en": "Model (checkpoint)", "ru": "Модель (чекпойнт)"},
    "ui.weights": {"en": "Weights", "ru": "Веса"},
    "ui.weights_last": {"en": "last", "ru": "последние"},
    "ui.weights_best": {"en": "best val", "ru": "лучшие (вал.)"},
    "ui.weights_help": {
        "en": "This run kept the weights of its best validation loss beside its last ones: explore either.",
        "ru": "Этот запуск сохранил веса с лучшей потерей на валидации рядом с последними: смотрите любые.",
    },
    "ui.checkpoint_help": {
        "en": "Shipped models and the runs saved on the Train page.",
        "ru": "Готовые модели и запуски, сохранённые на странице «Обучение».",
    },
    "ui.device": {"en": "Pages compute on {explorer}; training runs on {training}",
                  "ru": "Страницы считаются на {explorer}; обучение идёт на {training}"},
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
    "gen.too_long": {
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
    "gen.step.caption": {
        "en": "Add one character at a time and see what the model did: the experts each MoE layer chose for the "
              "character it just read (heaviest gate weight first) and the characters it expects next (“|” ends "
              "the name). Temperature, top-k, top-p, seed and max length come from the form above, as last applied "
              "with Generate.",
        "ru": "Добавляйте по одному символу и смотрите, что делает модель: каких экспертов выбрал каждый MoE-слой "
              "для только что прочитанного символа (сначала — с наибольшим весом гейта) и какие символы она ждёт "
              "дальше («|» завершает имя). Температура, отбор символов, зерно и максимальная длина берутся из "
              "формы выше — такими, какими их последний раз применила кнопка «Сгенерировать».",
    },
    "gen.step.chart_title": {
        "en": "After “{context}”: the likeliest next characters; picked “{char}” (probability {p})",
        "ru": "После «{context}»: самые вероятные следующие символы; выбран «{char}» (вероятность {p})",
    },
    "gen.step.col_added": {"en": "Added", "ru": "Добавлен"},
    "gen.step.col_experts": {"en": "Experts, layer {layer}", "ru": "Эксперты, слой {layer}"},
    "gen.step.col_name": {"en": "Name so far", "ru": "Имя на этом шаге"},
    "gen.step.col_prob": {"en": "Probability", "ru": "Вероятность"},
    "gen.step.col_read": {"en": "Read", "ru": "Прочитан"},
    "gen.step.col_step": {"en": "Step", "ru": "Шаг"},
    "gen.step.ended": {
        "en": "Finished: the model ended the name with “|”: **{text}**.",
        "ru": "Готово: модель завершила имя символом «|»: **{text}**.",
    },
    "gen.step.greedy": {"en": "Most likely (greedy)", "ru": "Самый вероятный"},
    "gen.step.last": {
        "en": "Step {step}: read “{fed}”, added “{char}” with probability {p}.",
        "ru": "Шаг {step}: прочитан «{fed}», добавлен «{char}» с вероятностью {p}.",
    },
    "gen.step.layer_experts": {"en": "Layer {layer}: {experts}", "ru": "Слой {layer}: {experts}"},
    "gen.step.max_len": {
        "en": "Finished: **{text}** reached the max length ({max_len}).",
        "ru": "Готово: имя **{text}** достигло максимальной длины ({max_len}).",
    },
    "gen.step.mode": {"en": "How to choose the next character", "ru": "Как выбирать следующий символ"},
    "gen.step.next": {"en": "Next character", "ru": "Следующий символ"},
    "gen.step.oov": {
        "en": "The start has characters this model never saw: {chars}. Use letters of its alphabet.",
        "ru": "В начале имени есть символы, которых модель не знает: {chars}. Используйте буквы её алфавита.",
    },
    "gen.step.prefix": {"en": "Start from", "ru": "Начать с"},
    "gen.step.prefix_help": {
        "en": "The name starts with these characters, e.g. Крас; empty = from scratch.",
        "ru": "Имя начнётся с этих символов, например Крас; пусто — с нуля.",
    },
    "gen.step.reset": {"en": "Reset", "ru": "Сбросить"},
    "gen.step.sample": {
        "en": "Sample (temperature {temperature}, seed {seed})",
        "ru": "Случайно (температура {temperature}, зерно {seed})",
    },
    "gen.step.text": {"en": "Name so far: **{text}**", "ru": "Имя сейчас: **{text}**"},
    "gen.step.title": {"en": "Step through decoding", "ru": "Генерация по шагам"},
    "gen.step.too_long": {
        "en": "The start has {n} characters but the max length is {max_len}.",
        "ru": "В начале имени {n} символов, а максимальная длина — {max_len}.",
    },
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
    "train.corpus_help": {
        "en": "Mixed corpora label every name with a domain (e.g. ru-en-names: Russian / English); training on one "
              "shows live whether the experts learn to split the names by domain.",
        "ru": "В смешанных корпусах у каждого имени есть домен (например, ru-en-names: русские / английские); при "
              "обучении на таком корпусе видно, учатся ли эксперты делить имена по доменам.",
    },
    "train.corpus_mixed": {"en": "{name} (mixed: {domains})", "ru": "{name} (смешанный: {domains})"},
    "train.d_model": {"en": "Width (d_model)", "ru": "Ширина (d_model)"},
    "train.dismiss": {"en": "Dismiss", "ru": "Скрыть"},
    "train.domain_mi_caption": {
        "en": "How many bits the experts chosen for a name's letters reveal about its domain (0 = nothing); grey "
              "dashed = the same model untrained, so a line rising above it means the router has learned to send "
              "the different kinds of names ({domains}) to different experts.",
        "ru": "Сколько бит выбор экспертов для букв имени говорит о его домене (0 — ничего); серый пунктир — та же "
              "модель без обучения, так что линия выше него значит: роутер научился отправлять разные виды имён "
              "({domains}) к разным экспертам.",
    },
    "train.domains": {"en": "domains: {domains}", "ru": "домены: {domains}"},
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
    "train.m_domain_ratio": {
        "en": "I(domain; expert), trained / untrained, {layer}",
        "ru": "I(домен; эксперт), обученная / необученная, {layer}",
    },
    "train.m_domain_ratio_help": {
        "en": "I(domain; expert) at the latest evaluation in the layer that separates the domains best, divided by "
              "the same layer of the untrained model.",
        "ru": "I(домен; эксперт) на последней оценке в слое, который лучше всех разделяет домены, делённое на то же "
              "для этого слоя необученной модели.",
    },
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
    "train.run_gone": {
        "en": "The run in this link is gone (unclaimed for an hour, or the server restarted): start a new one.",
        "ru": "Запуска по этой ссылке больше нет (час без вкладки или перезапуск сервера): начните новый.",
    },
    "train.save": {"en": "Save", "ru": "Сохранить"},
    "train.save_as": {"en": "Save as {name}", "ru": "Сохранить как {name}"},
    "train.save_exists": {
        "en": "A model named {name} already exists. Save under a free name, or replace it (its weights are lost).",
        "ru": "Модель с именем {name} уже есть. Сохраните под свободным именем или замените её (её веса пропадут).",
    },
    "train.save_failed": {"en": "Not saved: {error}", "ru": "Не сохранено: {error}"},
    "train.save_replace": {"en": "Replace {name}", "ru": "Заменить {name}"},
    "train.save_shipped": {
        "en": "{name} ships with dsmini and cannot be replaced: save under a free name.",
        "ru": "{name} входит в поставку dsmini, её нельзя заменить: сохраните под свободным именем.",
    },
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
    "train.unattended": {
        "en": "Stopped: no browser tab showed this run for {seconds} s. Its weights are kept: save, download or continue.",
        "ru": "Остановлено: ни одна вкладка не показывала этот запуск {seconds} с. Веса сохранены: сохраните, скачайте "
              "или продолжите обучение.",
    },
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
    "chart.arch.attn_dsa": {
        "en": "DSA on MLA, {heads} heads, top-{top_k}<br>cache c_kv {kv} + k_rope {rope} + indexer {index}",
        "ru": "DSA на MLA, голов: {heads}, top-{top_k}<br>кэш c_kv {kv} + k_rope {rope} + индексатор {index}",
    },
    "chart.arch.attn_moba": {
        "en": "MoBA on MLA, {heads} heads, blocks of {block}<br>cache c_kv {kv} + k_rope {rope}",
        "ru": "MoBA на MLA, голов: {heads}, блоки по {block}<br>кэш c_kv {kv} + k_rope {rope}",
    },
    "chart.arch.attn_loglinear": {
        "en": "log-linear on MLA, {heads} heads<br>cache c_kv {kv} + k_rope {rope}",
        "ru": "лог-линейное на MLA, голов: {heads}<br>кэш c_kv {kv} + k_rope {rope}",
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
    "chart.shootout.aux": {"en": " + aux loss {coef}", "ru": " + вспом. потеря {coef}"},
    "chart.shootout.col_checkpoint": {"en": "Model", "ru": "Модель"},
    "chart.shootout.col_imbalance": {"en": "Max / mean load", "ru": "Макс. / средняя нагрузка"},
    "chart.shootout.col_mi": {"en": "I(domain; expert), best layer", "ru": "I(домен; эксперт), лучший слой"},
    "chart.shootout.col_mi_initial": {"en": "Same, untrained", "ru": "То же до обучения"},
    "chart.shootout.col_router": {"en": "Router", "ru": "Роутер"},
    "chart.shootout.col_steps": {"en": "Steps", "ru": "Шагов"},
    "chart.shootout.col_val": {"en": "Val loss", "ru": "Потери (валидация)"},
    "chart.shootout.imbalance_title": {
        "en": "Load imbalance on the validation names (max / mean expert load)",
        "ru": "Дисбаланс нагрузки на валидационных именах (макс. / средняя нагрузка)",
    },
    "chart.shootout.maps_title": {"en": "Domain × expert, {layer}, per router", "ru": "Домен × эксперт, {layer}, по роутерам"},
    "chart.shootout.mi_title_domain": {
        "en": "I(domain; expert) per layer, per router (grey: untrained)",
        "ru": "I(домен; эксперт) по слоям и роутерам (серым: до обучения)",
    },
    "chart.shootout.mi_title_letter": {
        "en": "I(letter; expert) per layer, per router (grey: untrained)",
        "ru": "I(буква; эксперт) по слоям и роутерам (серым: до обучения)",
    },
    "chart.shootout.router_noisy_topk": {"en": "noisy top-k", "ru": "зашумлённый top-k"},
    "chart.shootout.router_sigmoid_bias": {"en": "sigmoid + bias (aux-loss-free)", "ru": "сигмоида + смещение (без вспом. потери)"},
    "chart.shootout.router_softmax_topk": {"en": "softmax top-k", "ru": "softmax top-k"},
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
