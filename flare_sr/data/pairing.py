"""Which flared input (lq) goes with which clean label (gt): one rule set for folders, meta files and LMDB keys.

The field names its pairs in a few ways; each name is tried against these rules, in this order:

1. ``filename_tmpl`` (BasicSR's option, default ``'{}'``): the lq stem is ``filename_tmpl.format(gt stem)``,
   e.g. ``'{}_flare'`` pairs gt ``0000.png`` with lq ``0000_flare.png`` and ``'{}x4'`` DIV2K's ``0001x4.png``
   with ``0001.png``. With the default this is "identical stems" (the extension may differ: ``a.jpg`` <->
   ``a.png``). A template of one's own that pairs no file is an error naming what it looked for; one that
   pairs only some files is a warning line (the rest were paired by the rules below).
2. **Role words swapped**: the stems are equal once one role word of the lq side is swapped for one of the gt
   side at the same place, e.g. Dacon ``train_input_10000`` <-> ``train_label_10000``, Flare7K
   ``input_000000`` <-> ``gt_000000``, SIDD ``0001_NOISY_SRGB_010`` <-> ``0001_GT_SRGB_010``, Rain100
   ``rain-001`` <-> ``norain-001``.
3. **Role word dropped**: the stems are equal once one role word is removed from one side with its separator,
   e.g. lq ``0000_flare`` <-> gt ``0000``.

A role word is a whole token (between ``_``, ``-``, ``.``, space or the ends of the stem), in any case:
lq words ``LQ_WORDS``, gt words ``GT_WORDS``. A rule only pairs a name with exactly one partner that no
earlier rule took, so mixed folders pair file by file. Anything else is paired by a split CSV
(``meta_csv``, scripts/split_dataset.py), which names both files of every pair explicitly.

The pair's key (a split CSV's ``img_id``, the stem of LMDB patch keys) is the gt stem for rule 1 and the
stem without its role word for rules 2 and 3 (``train_10000``, ``000000``).
"""
import os
import re

from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import same_file
from flare_sr.utils.hardware import warn
from flare_sr.utils.img_util import list_images

LQ_WORDS = ('input', 'inp', 'in', 'lq', 'lr', 'low', 'blur', 'blurry', 'noisy', 'rain', 'rainy', 'flare', 'flared',
            'degraded', 'hazy', 'source', 'src')
GT_WORDS = ('label', 'gt', 'groundtruth', 'hr', 'high', 'sharp', 'clean', 'clear', 'norain', 'target', 'tar', 'ref',
            'reference')
_SEPARATORS = '_-. '
_TOKEN = re.compile(r'[^_\-. ]+')


def _check_template(filename_tmpl):
    if not isinstance(filename_tmpl, str) or filename_tmpl.count('{}') != 1 or re.search(r'\{[^}]', filename_tmpl):
        raise FlareSRError(f'filename_tmpl {filename_tmpl!r} needs exactly one {{}} for the gt file stem '
                           "(BasicSR's convention, e.g. '{}' or '{}_flare')")
    return filename_tmpl


def _role_tokens(stem, words):
    """(start, end) of every whole token of ``stem`` that is one of ``words`` (any case)."""
    return [(match.start(), match.end()) for match in _TOKEN.finditer(stem) if match.group().lower() in words]


def _swapped_forms(stem, words):
    """The stem with one role token replaced by a marker, for each role token it has."""
    return {stem[:start] + '\0' + stem[end:] for start, end in _role_tokens(stem, words)}


def _dropped_forms(stem, words):
    """The stem with one role token and one adjacent separator removed, for each role token it has."""
    forms = set()
    for start, end in _role_tokens(stem, words):
        if end < len(stem) and stem[end] in _SEPARATORS:
            forms.add(stem[:start] + stem[end + 1:])
        elif start > 0 and stem[start - 1] in _SEPARATORS:
            forms.add(stem[:start - 1] + stem[end:])
    return {form for form in forms if form}


def _key_stem(key):
    return key


def _file_stem(name):
    return os.path.splitext(os.path.basename(name))[0]


def rules_text(filename_tmpl='{}'):
    """The rules as one phrase for error messages."""
    first = 'identical stems' if filename_tmpl == '{}' else f'lq stem = filename_tmpl {filename_tmpl!r} of the gt stem'
    return (f'tried: {first}; a role word swapped (lq {"/".join(LQ_WORDS[:6])}/... <-> gt '
            f'{"/".join(GT_WORDS[:6])}/..., e.g. input_0001 <-> gt_0001); a role word dropped (0001_flare <-> 0001)')


def _key_of_swapped(form):
    """The pair key of a swapped form: the marker removed with one adjacent separator (the following one first)."""
    at = form.index('\0')
    if at + 1 < len(form) and form[at + 1] in _SEPARATORS:
        return form[:at] + form[at + 2:]
    if at > 0 and form[at - 1] in _SEPARATORS:
        return form[:at - 1] + form[at + 1:]
    return form.replace('\0', '')


def _index(names, forms_of):
    """{form: name} for every form of every name; a form two names share pairs neither (it is ambiguous)."""
    index, ambiguous = {}, set()
    for name in names:
        for form in forms_of(name):
            if form in index and index[form] != name:
                ambiguous.add(form)
            index[form] = name
    for form in ambiguous:
        del index[form]
    return index


def pair_names(lq_names, gt_names, filename_tmpl='{}', lq_where='lq', gt_where='gt', all_lq=True, keys=False,
               quiet=False):
    """[(key, lq_name, gt_name)] in the order of ``gt_names``, by the module's rules; names are paths or file
    names, or with ``keys`` LMDB keys (no extension to strip).

    Every gt name must find a partner; every lq name too unless ``all_lq`` is False (a meta file chose the
    gt names, so other lq files may be left over). Two files with the same stem on one side, and an
    unpaired file, are FlareSRErrors naming the file, the rules tried and ``meta_csv``. ``lq_where`` /
    ``gt_where`` name the folders (or LMDBs) in messages. ``quiet``: no warning line for a template that pairs
    only some files. Pairs that all name one file (one folder given as both) are an error too; some (flare-free
    pairs linked to their labels) are not.
    """
    filename_tmpl = _check_template(filename_tmpl)
    paths = not keys
    _stem = _key_stem if keys else _file_stem
    for names, where in ((lq_names, lq_where), (gt_names, gt_where)):
        seen = {}
        for name in names:
            stem = _stem(name)
            if stem in seen:
                raise FlareSRError(f'{name}: same stem "{stem}" as {seen[stem]} in {where}; keep one of them')
            seen[stem] = name
    lq_by_stem = {_stem(name): name for name in lq_names}
    partner = {}  # gt name -> (key, lq name)
    taken = set()

    def claim(gt_name, lq_name, key):
        if lq_name is not None and lq_name not in taken and gt_name not in partner:
            partner[gt_name] = (key, lq_name)
            taken.add(lq_name)

    for gt_name in gt_names:  # rule 1: the template, then identical stems
        gt_stem = _stem(gt_name)
        claim(gt_name, lq_by_stem.get(filename_tmpl.format(gt_stem)), gt_stem)
    by_template = len(partner)
    if filename_tmpl != '{}' and gt_names and not by_template:  # the user's template, and it matches nothing
        raise FlareSRError(
            f'filename_tmpl {filename_tmpl!r} pairs no file: for {os.path.basename(gt_names[0])} in {gt_where} it '
            f'looks for the lq stem "{filename_tmpl.format(_stem(gt_names[0]))}" in {lq_where}, whose files are like '
            f'{os.path.basename(lq_names[0]) if lq_names else "(none)"} (lq stem = filename_tmpl.format(gt stem), '
            "as BasicSR's); fix or remove filename_tmpl")
    for gt_name in gt_names:
        gt_stem = _stem(gt_name)
        claim(gt_name, lq_by_stem.get(gt_stem), gt_stem)
    rules = (  # (lq forms, gt forms, key of the matching form)
        (lambda stem: _swapped_forms(stem, LQ_WORDS), lambda stem: _swapped_forms(stem, GT_WORDS), _key_of_swapped),
        (lambda stem: _dropped_forms(stem, LQ_WORDS), lambda stem: {stem}, lambda form: form),
        (lambda stem: {stem}, lambda stem: _dropped_forms(stem, GT_WORDS), lambda form: form),
    )
    for lq_forms, gt_forms, key_of in rules:
        index = _index([name for name in lq_names if name not in taken], lambda name: lq_forms(_stem(name)))
        for gt_name in gt_names:
            if gt_name not in partner:
                matches = {(index[form], form) for form in gt_forms(_stem(gt_name)) if form in index}
                if len({lq_name for lq_name, _ in matches}) == 1:
                    lq_name, form = sorted(matches)[0]
                    claim(gt_name, lq_name, key_of(form))
    orphans_gt = [name for name in gt_names if name not in partner]
    orphans_lq = [name for name in lq_names if name not in taken] if all_lq else []
    if orphans_gt or orphans_lq:
        orphan, other = (orphans_lq[0], gt_where) if orphans_lq else (orphans_gt[0], lq_where)
        raise FlareSRError(
            f'{orphan}: no partner in {other} ({len(orphans_gt) + len(orphans_lq)} unpaired file(s) in all; '
            f'{rules_text(filename_tmpl)}); set filename_tmpl, or list the pairs in a split CSV '
            '(meta_csv, written by scripts/split_dataset.py or by hand)')
    keys = {}
    for gt_name in gt_names:
        key, lq_name = partner[gt_name]
        if key in keys:
            raise FlareSRError(f'{lq_name}: same pairing key "{key}" as {keys[key]}; keep one of them')
        keys[key] = lq_name
    if filename_tmpl != '{}' and by_template < len(gt_names) and not quiet:
        unmatched = next(name for name in gt_names if _stem(partner[name][1]) != filename_tmpl.format(_stem(name)))
        warn(f'filename_tmpl {filename_tmpl!r} pairs only {by_template} of {len(gt_names)} files of {gt_where}; the '
             f'others by the other rules (e.g. {os.path.basename(unmatched)} <-> '
             f'{os.path.basename(partner[unmatched][1])})')
    pairs = [(partner[gt_name][0], partner[gt_name][1], gt_name) for gt_name in gt_names]
    if paths:  # bare file names (no folder) cannot be told apart
        selves = [(lq_name, gt_name) for _, lq_name, gt_name in pairs
                  if os.path.dirname(lq_name) and os.path.dirname(gt_name) and same_file(lq_name, gt_name)]
        if pairs and len(selves) == len(pairs):  # one folder as lq and gt (or a link to it): no input has flare
            raise FlareSRError(f'{selves[0][0]}: the same file as its partner {selves[0][1]}, as is every input '
                               f'({len(pairs)} pair(s)): one folder given as both; give the flared inputs and the '
                               'labels in two folders')
    return pairs


def pair_paths(lq_dir, gt_dir, filename_tmpl='{}', quiet=False):
    """[(key, lq_path, gt_path)] in gt file order, paired by the rules above (extensions may differ)."""
    return pair_names(list_images(lq_dir), list_images(gt_dir), filename_tmpl, lq_where=os.fspath(lq_dir),
                      gt_where=os.fspath(gt_dir), quiet=quiet)
