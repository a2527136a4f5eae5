"""The passport's labels in English and Ukrainian (the Ukrainian ones are the seed's field names,
word for word)."""

from __future__ import annotations

__all__ = ["LABELS", "LANGUAGES", "WORDS", "label", "lang_index"]

#: Label languages of :func:`~riskengine.render.passport.render`.
LANGUAGES: tuple[str, ...] = ("en", "uk")

# key: (English, Ukrainian). The Ukrainian labels of the passport and of the note are quoted from
# appendices 1 and 2 of the seed; those marked "ours" have no field of their own in the form.
LABELS: dict[str, tuple[str, str]] = {
    "department": (
        "Department for Combating Smuggling, Risk Analysis and Anti-Corruption",
        "Департамент боротьби з контрабандою, аналізу ризиків та протидії корупції",
    ),
    "rms": ("Risk management system", "СУР"),
    "title_profile": ("Risk profile", "Профіль ризику N"),
    "approved": ("Profile approval date", "Дата затвердження ПР"),
    "edition_approved": ("Edition approval date", "Дата затвердження редакції ПР"),
    "in_force_from": ("Profile in force from", "ПР діє з"),
    "in_force_to": ("Profile in force to", "ПР діє до"),
    "edition_in_force": ("Edition in force from", "Редакція ПР діє з"),
    "number": ("Risk profile No.", "Профіль ризику N"),
    "name": ("Profile name", "Назва ПР"),
    "filling": ("Filling method", "Спосіб наповнення ПР"),
    "module": (
        "Clearance-software module the profile is implemented in",
        "Модуль АСАУР, до якого імплементується ПР",
    ),
    "spheres": ("Risk spheres", "Сфери ризику"),
    "indicators": ("Risk indicators", "Індикатори ризику"),
    "indicator_name": ("Indicator name", "Назва індикатора"),
    "indicator_value": ("Indicator value", "Значення індикатора"),
    "exceptions": ("Exceptions to the risk indicators", "Винятки з індикаторів ризику"),
    "lists": ("Lists of values", "Переліки значень"),  # ours
    "algorithm": (
        "Risk degree assessment. Description of the calculation algorithm",
        "Оцінка ступеня ризику. Опис алгоритму обчислення",
    ),
    "updates": ("Periodic updates of indicator values", "Періодичне оновлення значень індикаторів"),
    "message": ("Message to the inspector", "Текст повідомлення для інспектора"),
    "controls": ("Control forms", "Форми контролю"),
    "control_code": ("Code and name of the customs procedure", "Код і назва митної процедури"),
    "control_kind": ("Kind of the customs procedure", "Вид митної процедури"),
    "threshold": ("Risk degree threshold", "Поріг ступеня ризику"),
    "max_negative": (
        "Maximum negative history of the profile",
        "Максимальне значення негативної історії ПР",
    ),
    "max_positive": (
        "Maximum positive history of the profile",
        "Максимальне значення позитивної історії ПР",
    ),
    "reasons": (
        "Reasons for non-completion of customs clearance counted in the negative history",
        "Причини незавершення митного оформлення, які враховуються при розрахунку негативної "
        "історії ПР",
    ),
    "reason_code": ("Code and name of the reason", "Код і назва причини"),
    "coefficient": ("Significance coefficient", "Коефіцієнт значимості"),
    "history_subject": ("History kept per", "Історія ведеться за"),  # ours
    "history_window": ("History window", "Період історії"),  # ours
    "per_case": (
        "Negative history per non-completed clearance",
        "Негативна історія за одне незавершене оформлення",
    ),  # ours
    "per_clean": (
        "Positive history per control that found no violation",
        "Позитивна історія за один контроль без виявлених порушень",
    ),  # ours
    "contact": ("Contact person", "Контактна особа"),
    "phone": ("Phone", "Телефон"),
    "fax": ("Fax", "Факс"),
    "mailbox": (
        "Personal mailbox in the customs e-mail system",
        "Особиста поштова скринька в системі електронної пошти Держмитслужби",
    ),
    "review": (
        "Effectiveness control term of the profile",
        "Термін здійснення контролю ефективності ПР",
    ),
    "regional_table": (
        "Risk indicators and other profile parameters filled by regional customs offices",
        "Таблиця індикаторів ризику та інших параметрів ПР, які повинні наповнюватись "
        "регіональними митницями, митницями",
    ),
    "param": ("Parameter", "Параметр"),
    "param_type": ("Type", "Тип"),
    "param_title": ("Description", "Опис"),
    "fill_columns": ("Each office fills", "Кожна митниця заповнює"),  # ours
    "note": ("Analytical note to the risk profile", "Аналітична довідка до профілю ризику"),
    "note_description": ("Profile description", "Опис ПР"),
    "threat": (
        "Customs threat. Essence of the problem",
        "Митна загроза. Суть проблеми",
    ),
    "basis": (
        "Documents / grounds for developing the risk profile",
        "Документи/підстави розроблення профілю ризику",
    ),
    "causes": ("Contradictions. Causes of the risk", "Протиріччя. Причини виникнення ризику"),
    "damage": (
        "Customs damage. Assessment of the consequences of the risk",
        "Митна шкода. Оцінка наслідків ризику",
    ),
    "measures": (
        "Avoiding the customs threat. Proposed measures to minimise the risk",
        "Уникнення митної загрози. Пропоновані заходи мінімізації ризику",
    ),
    "fill_title": ("Regional fill of risk profile", "Наповнення регіонального ПР N"),
    "office": (
        "Code of the customs office / unit",
        "Код митного органу/підрозділу митного органу",
    ),
    "order": ("Order of the customs office", "Наказ митного органу"),
    "valid_from": ("Valid from", "Діє з"),
    "valid_to": ("Valid to", "Діє до"),
    "values": ("Values of the region-filled parameters", "Значення параметрів ПР"),
    "value": ("Value", "Значення"),
    "fill_message": ("Message to the inspector", "Повідомлення для інспектора"),
    "fill_controls": ("Customs procedures formed", "Формування митної процедури"),
}

# Words used inside values, (English, Ukrainian).
WORDS: dict[str, tuple[str, str]] = {
    "none": ("—", "—"),
    "draft": ("draft (no number assigned yet)", "проєкт (номер ще не присвоєно)"),
    "open_end": ("no end date", "без обмеження строку"),
    "central": ("central", "центральний"),
    "regional": ("regional", "регіональний"),
    "central_by": ("central, with the participation of", "центральний, із залученням"),
    "regional_by": ("regional, filled by", "регіональний, наповнює"),
    "coordinated_by": ("coordinated by", "координують"),
    "mandatory": ("mandatory", "обов'язкова"),
    "conditional": ("mandatory under the condition", "обов'язкова за умови"),
    "if_necessary": ("if necessary", "у разі необхідності"),
    "unless": ("exception:", "виняток:"),
    "clamped": ("the result is limited to 0..100", "результат обмежується діапазоном 0..100"),
    "by": ("responsible", "відповідальний"),
    "unknown_code": ("not in the classifier", "немає в класифікаторі"),
    "order_of": ("No. {number} of {date}", "N {number} від {date}"),
    "as_profile": ("as in the profile", "як у ПР"),
    "before_date": ("before the declaration date", "до дати декларації"),
    "type_number": ("number", "число"),
    "type_string": ("text", "текст"),
    "type_code": ("code", "код"),
    "type_date": ("date", "дата"),
    "type_boolean": ("yes / no", "так / ні"),
    "list_of": ("list of", "перелік:"),
    "fill_columns_tail": (
        "message for the inspector; customs procedure formed; kind of the customs procedure; "
        "valid from; valid to",
        "повідомлення для інспектора; формування митної процедури; вид митної процедури; "
        "діє з; діє до",
    ),
}


def lang_index(lang: str) -> int:
    """The position of ``lang`` in :data:`LANGUAGES`; an unknown language is a ValueError."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}")
    return LANGUAGES.index(lang)


def label(key: str, lang: str = "en") -> str:
    """The label of a passport field in ``lang`` ("en" or "uk")."""
    return LABELS[key][lang_index(lang)]
