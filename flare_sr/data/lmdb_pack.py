"""Pack aligned lq/gt patch pairs into BasicSR-format LMDBs, verify them, and read any BasicSR-format LMDB.

Reading (``LmdbImages``, the one LMDB reader of both datasets; ``read_meta_info``): LMDBs made here or by
BasicSR's own ``basicsr.utils.lmdb_util.make_lmdb_from_imgs`` / ``LmdbMaker``. A ``meta_info.txt`` line is
``<name> (h,w,c) <level>``; the key is the name without its image extension, so keys may hold spaces and
parentheses (``flare (1)``) and, unlike BasicSR's reader which cuts at the first '.', dots. Records decode
like image files (gray -> 3 channels, 16-bit kept, alpha dropped).

Layout: ``OUT/lq.lmdb`` and ``OUT/gt.lmdb`` written with ``basicsr.utils.lmdb_util.LmdbMaker``: PNG
values (BGR, as BasicSR decodes them), ``meta_info.txt`` lines ``<key>.png (h,w,c) <level>`` and
identical key sets ``<image key>_s<y>_<x>`` (ASCII, no '.', since BasicSR cuts keys at the first '.').

Safety: every pair is decoded and size-checked before anything is written; the LMDBs are built in a
hidden temporary folder beside OUT and renamed onto OUT only when complete, so a killed or failed
run (full disk, map full) never leaves an LMDB that looks complete and never touches the previous one.
"""
import math
import os
import re
import signal
import threading
import time
from multiprocessing import Pool

import cv2
import lmdb
import numpy as np
from basicsr.utils.lmdb_util import LmdbMaker
from tqdm import tqdm

from flare_sr.data.patches import patch_grid
from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import atomic_path, refuse_file_on_path
from flare_sr.utils.hardware import warn
from flare_sr.utils.img_util import IMAGE_EXTENSIONS, decode_image, encode_png, image_size, read_image_uint8

LMDB_NAMES = ('lq.lmdb', 'gt.lmdb')
PATCH_KEY = re.compile(r'^(?P<image>.+)_s(?P<y>\d+)_(?P<x>\d+)$')
# BasicSR's meta line: a name, then optionally " (h,w,c)" and after it optionally " <compress level>".
_META_LINE = re.compile(r'^(?P<name>.+?)(?:\s+\(\s*(?P<h>\d+)\s*,\s*(?P<w>\d+)\s*,\s*(?P<c>\d+)\s*\)'
                        r'(?:\s+(?P<level>\d+))?)?$')
_PAGE = 4096


def lmdb_image_key(key):
    """An image's pairing key made LMDB-safe: characters other than ASCII letters, digits, '_' and '-' become '_'."""
    return re.sub(r'[^A-Za-z0-9_-]', '_', key)


def patch_key(image_key, y, x):
    return f'{image_key}_s{y:04d}_{x:04d}'


def image_key_of_patch(key):
    """The image part of a patch key (used to select patches by a meta CSV's img_id)."""
    match = PATCH_KEY.match(key)
    return match.group('image') if match else key


# ----------------------------------------------------------------------------------------------- reading meta


def parse_meta_line(line):
    """(name, (h, w, c) or None) of one meta_info line (BasicSR's ``meta_info_file`` or an LMDB's
    ``meta_info.txt``); None for a blank line. Names may hold spaces: ``flare (1).png (512,512,3) 1``."""
    match = _META_LINE.match(line.strip())
    if not match:
        return None
    shape = tuple(int(match.group(name)) for name in 'hwc') if match.group('h') else None
    return match.group('name'), shape


def key_of_name(name):
    """An LMDB key from a meta_info name: the name without its image extension (``a b.png`` -> ``a b``)."""
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_EXTENSIONS else name


def read_meta_info_names(meta_info_file):
    """The names a BasicSR ``meta_info_file`` lists: per line a name, optionally `` (h,w,c)`` and a level."""
    if not os.path.isfile(meta_info_file):
        raise FlareSRError(f'{meta_info_file}: meta_info_file not found')
    try:
        with open(meta_info_file, encoding='utf-8-sig') as handle:  # a BOM (Windows editors) is no part of a name
            names = [parsed[0] for parsed in map(parse_meta_line, handle) if parsed]
    except UnicodeDecodeError:
        raise FlareSRError(f'{meta_info_file}: meta_info_file is not UTF-8 text (save it as UTF-8)') from None
    if not names:
        raise FlareSRError(f'{meta_info_file}: meta_info_file lists no images')
    return names


def read_meta_info(lmdb_path):
    """[(key, (h, w, c))] from ``meta_info.txt``; malformed or duplicate lines are errors naming the line."""
    meta_path = os.path.join(lmdb_path, 'meta_info.txt')
    if not os.path.isfile(os.path.join(lmdb_path, 'data.mdb')):
        raise FlareSRError(f'{lmdb_path}: not an LMDB (no data.mdb)')
    if not os.path.isfile(meta_path):
        raise FlareSRError(f'{meta_path}: missing (every LMDB made by BasicSR or flare_sr has one)')
    entries, seen = [], set()
    with open(meta_path, encoding='utf-8-sig', errors='replace') as handle:  # BOM and CRLF of Windows editors
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parsed = parse_meta_line(line)
            if parsed is None or parsed[1] is None:
                raise FlareSRError(f'{meta_path}: line {line_number} is not "<key>.png (h,w,c) <level>": '
                                   f'{line.strip()!r}')
            key = key_of_name(parsed[0])
            if key in seen:
                raise FlareSRError(f'{meta_path}: key {key} is listed twice (line {line_number})')
            seen.add(key)
            entries.append((key, parsed[1]))
    if not entries:
        raise FlareSRError(f'{meta_path}: empty, the LMDB holds no patches')
    return entries


_ENVIRONMENTS = {}
_ENVIRONMENTS_LOCK = threading.Lock()  # no environment closes for a fork while a thread reads through it


def _close_before_fork():
    """py-lmdb refuses to open, in a forked child, an environment its parent had open ("already open in this
    process"): a DataLoader worker forked after the main process read the LMDB (a validation on it, then the next
    epoch's workers) failed. The parent's environments close before each fork and reopen on their next use."""
    _ENVIRONMENTS_LOCK.acquire()
    for env in _ENVIRONMENTS.values():
        env.close()
    _ENVIRONMENTS.clear()


os.register_at_fork(before=_close_before_fork, after_in_parent=_ENVIRONMENTS_LOCK.release,
                    after_in_child=_ENVIRONMENTS_LOCK.release)


class LmdbImages:
    """Records of one LMDB as images: ``get(key)`` -> HxWx3 RGB uint8 / uint16 (see ``decode_image``).

    The environment opens on first use, once per process and LMDB file: py-lmdb refuses a second handle
    on an environment a process already has open (a train and a val dataset on one LMDB), and handles
    must not cross into DataLoader workers. ``readahead`` is BasicSR's ``io_backend`` option.
    """

    def __init__(self, lmdb_path, readahead=False):
        self.path = os.fspath(lmdb_path)
        self.readahead = bool(readahead)

    def _env(self):
        data_file = os.path.join(self.path, 'data.mdb')
        try:
            stat = os.stat(data_file)
        except OSError as error:
            raise FlareSRError(f'{self.path}: not an LMDB ({error.strerror})') from None
        cache_key = (os.getpid(), stat.st_dev, stat.st_ino)  # a replaced LMDB at the same path is a new one
        if cache_key not in _ENVIRONMENTS:
            try:
                _ENVIRONMENTS[cache_key] = lmdb.open(self.path, readonly=True, lock=False, readahead=self.readahead,
                                                     subdir=True)
            except lmdb.Error as error:
                raise FlareSRError(f'{self.path}: cannot open LMDB ({error})') from error
        return _ENVIRONMENTS[cache_key]

    def get(self, key):
        with _ENVIRONMENTS_LOCK, self._env().begin(write=False) as txn:
            value = txn.get(key.encode('utf-8'))
        if value is None:
            raise FlareSRError(f'{self.path}: record {key!r} is listed in meta_info.txt but missing')
        return decode_image(np.frombuffer(value, np.uint8), f'{self.path}: record {key!r}')


def _open_readonly(lmdb_path):
    try:
        return lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False, subdir=True)
    except lmdb.Error as error:
        raise FlareSRError(f'{lmdb_path}: cannot open LMDB ({error})') from error


def _record_count(lmdb_path):
    """Entries in the LMDB, or None when this process already has it open (py-lmdb allows one handle per
    process, e.g. a second dataset on the same LMDB); the meta key checks still run then. A data.mdb shorter than
    its last page is an error."""
    try:
        env = lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False, subdir=True)
    except lmdb.Error as error:
        if 'already open' in str(error):
            return None
        raise FlareSRError(f'{lmdb_path}: cannot open LMDB ({error})') from error
    try:
        stat, last_page = env.stat(), env.info()['last_pgno']
    finally:
        env.close()
    needed, size = (last_page + 1) * stat['psize'], os.path.getsize(os.path.join(lmdb_path, 'data.mdb'))
    if size < needed:  # reading the missing pages kills the process with SIGBUS, without a word
        raise FlareSRError(f'{lmdb_path}: data.mdb is truncated ({size} of {needed} bytes; an interrupted copy or a '
                           'full disk): copy or pack it again')
    return stat['entries']


def _describe_difference(first_name, first, second_name, second):
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    example = (f'{only_first[0]} is in {first_name} but not in {second_name}' if only_first
               else f'{only_second[0]} is in {second_name} but not in {first_name}')
    return f'{example} ({len(only_first) + len(only_second)} keys differ)'


def lmdb_keys(lmdb_path):
    """Keys of ``meta_info.txt`` in file order, once the LMDB is seen to hold as many records."""
    lmdb_path = os.fspath(lmdb_path)
    meta = read_meta_info(lmdb_path)
    records = _record_count(lmdb_path)
    if records is not None and records != len(meta):
        raise FlareSRError(f'{lmdb_path}: holds {records} records but meta_info.txt lists {len(meta)}')
    return [key for key, _ in meta]


def quick_check_lmdb(lq_path, gt_path):
    """Cheap start-up check: both meta files parse, their key sets match, and each LMDB holds as many records.

    Returns the sorted keys. Raises FlareSRError naming the LMDB and the first mismatching key.
    """
    lq_path, gt_path = os.fspath(lq_path), os.fspath(gt_path)
    lq_keys, gt_keys = lmdb_keys(lq_path), lmdb_keys(gt_path)
    if set(lq_keys) != set(gt_keys):
        raise FlareSRError(f'{lq_path} and {gt_path} differ: ' + _describe_difference('lq', lq_keys, 'gt', gt_keys))
    return sorted(lq_keys)


def full_check_lmdb(lq_path, gt_path, progress=True):
    """Quick check, then every stored key equals the meta keys, every record decodes with its meta shape,
    and lq and gt shapes agree. Returns the number of patch pairs; raises on the first kind of problem found."""
    keys = quick_check_lmdb(lq_path, gt_path)
    shapes = {}
    for path in (lq_path, gt_path):
        meta = dict(read_meta_info(path))
        env = _open_readonly(path)
        problems = []
        try:
            with env.begin(write=False) as txn:
                stored = []
                for raw_key, value in tqdm(txn.cursor(), total=len(meta), desc=os.path.basename(path),
                                           unit='patch', disable=not progress):
                    key = raw_key.decode('utf-8', errors='replace')
                    stored.append(key)
                    if key not in meta:
                        continue
                    img = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                    if img is None:
                        problems.append(f'record {key} does not decode as an image')
                        continue
                    shape = img.shape if img.ndim == 3 else img.shape + (1,)
                    if shape != meta[key]:
                        problems.append(f'record {key} has shape {shape}, meta_info.txt says {meta[key]}')
                    shapes.setdefault(key, []).append(shape)
        finally:
            env.close()
        if set(stored) != set(meta):
            problems.insert(0, 'stored keys differ from meta_info.txt: '
                            + _describe_difference('the LMDB', stored, 'meta_info.txt', meta))
        if problems:
            raise FlareSRError(f'{path}: {problems[0]} ({len(problems)} problem(s) in all)')
    mismatched = [key for key in keys if len(set(shapes[key])) != 1]
    if mismatched:
        raise FlareSRError(f'{lq_path} and {gt_path}: record {mismatched[0]} has lq shape {shapes[mismatched[0]][0]} '
                           f'but gt shape {shapes[mismatched[0]][1]} ({len(mismatched)} in all)')
    return len(keys)


# ----------------------------------------------------------------------------------------------- packing


def _measure_pair(pair):
    """Decode both images fully (catches corrupt files) and check their sizes agree."""
    _, lq_path, gt_path = pair
    lq_size, gt_size = image_size(lq_path), image_size(gt_path)
    if lq_size != gt_size:
        raise FlareSRError(f'{lq_path}: size {lq_size[0]}x{lq_size[1]} differs from its label {gt_path} '
                           f'({gt_size[0]}x{gt_size[1]})')
    return lq_size


def _cut_pair(job):
    """PNG bytes of every patch pair of one image: [(key, lq_png, gt_png)]."""
    image_key, lq_path, gt_path, patch, stride, compress_level = job
    lq, gt = read_image_uint8(lq_path), read_image_uint8(gt_path)
    records = []
    for y, x in patch_grid(lq.shape[0], lq.shape[1], patch, stride):
        window = (slice(y, y + patch), slice(x, x + patch))
        records.append((patch_key(image_key, y, x), encode_png(lq[window], compress_level),
                        encode_png(gt[window], compress_level)))
    return records


def _restore_default_sigterm():
    """Pool workers must die on the SIGTERM ``Pool.terminate`` sends, not run the parent's clean-up handler."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _map(function, jobs, workers, desc, unit, progress):
    """Ordered parallel map with a progress bar; one worker runs in-process."""
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress)
    workers = min(workers, len(jobs))
    try:
        if workers <= 1:
            for job in jobs:
                yield function(job)
                bar.update()
        else:
            with Pool(workers, initializer=_restore_default_sigterm) as pool:
                for result in pool.imap(function, jobs):
                    yield result
                    bar.update()
    finally:
        bar.close()


def estimate_map_size(num_patches, patch):
    """Bytes each LMDB may grow to: an incompressible PNG per patch, rounded up to LMDB pages, with 50% slack."""
    worst_value = patch * patch * 3 * 1.02 + 1024
    pages = math.ceil(worst_value / _PAGE) + 1
    return int(num_patches * pages * _PAGE * 1.5) + 64 * 1024**2


def check_output_folder(out_dir, overwrite):
    """Refuse an OUT that holds an LMDB (unless overwrite) or anything else we would replace with it."""
    refuse_file_on_path(out_dir, '--out')
    if not os.path.lexists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise FlareSRError(f'{out_dir}: exists and is not a folder')
    entries = sorted(os.listdir(out_dir))
    foreign = [name for name in entries if name not in LMDB_NAMES]
    if foreign:
        raise FlareSRError(f'{out_dir}: holds other files ({", ".join(foreign[:3])}); the pack replaces the whole '
                           'folder, so choose a new or empty one')
    if entries and not overwrite:
        raise FlareSRError(f'{out_dir}: already holds an LMDB; pass --overwrite to replace it '
                           '(the old one stays until the new one is complete)')


def killed_packs(out_dir):
    """The hidden temporary folders that runs killed by SIGKILL left beside ``out_dir`` (``atomic_path``'s names)."""
    parent, name = os.path.split(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        return []
    return sorted(os.path.join(parent, entry) for entry in os.listdir(parent)
                  if entry.startswith(f'.{name}.') and entry.endswith('.tmp'))


def _warn_killed_packs(out_dir):
    left = killed_packs(out_dir)
    if left:  # not deleted here: one may belong to a run still packing
        warn(f'{left[0]}: left by a killed pack of {out_dir} ({len(left)} such folder(s)); delete it once no other '
             'pack runs, it may hold gigabytes')


def make_unique_image_keys(pairs):
    """Replace pairing keys by LMDB-safe keys; two keys that become equal are an error naming both files."""
    owners = {}
    safe_pairs = []
    for key, lq_path, gt_path in pairs:
        safe = lmdb_image_key(key)
        if safe in owners:
            raise FlareSRError(f'{lq_path}: its LMDB key "{safe}" (from "{key}") collides with that of '
                               f'{owners[safe][0]} (from "{owners[safe][1]}"); rename one of them (or its img_id in '
                               'the split CSV)')
        owners[safe] = (lq_path, key)
        safe_pairs.append((safe, lq_path, gt_path))
    return safe_pairs


def pack_lmdb(pairs, out_dir, patch, stride, workers=1, overwrite=False, compress_level=1, map_size=None,
              progress=True):
    """Validate every pair, then write OUT/lq.lmdb and OUT/gt.lmdb atomically. Returns a summary dict.

    ``map_size`` (bytes per LMDB) defaults to ``estimate_map_size``; tests pass a tiny one to hit a full map.
    """
    out_dir = os.path.normpath(os.fspath(out_dir))
    if not pairs:
        raise FlareSRError(f'{out_dir}: nothing to pack (no image pairs selected)')
    check_output_folder(out_dir, overwrite)
    _warn_killed_packs(out_dir)
    pairs = make_unique_image_keys(pairs)
    start = time.time()
    sizes = list(_map(_measure_pair, pairs, workers, 'checking pairs', 'pair', progress))
    for (_, lq_path, _), (height, width) in zip(pairs, sizes):
        if height < patch or width < patch:
            raise FlareSRError(f'{lq_path}: {height}x{width} is smaller than the patch size {patch}')
    num_patches = sum(len(patch_grid(height, width, patch, stride)) for height, width in sizes)
    map_size = map_size or estimate_map_size(num_patches, patch)
    jobs = [(key, lq_path, gt_path, patch, stride, compress_level) for key, lq_path, gt_path in pairs]
    value_bytes = {'lq': 0, 'gt': 0}
    with atomic_path(out_dir, is_dir=True) as tmp_dir:
        makers = []
        try:
            makers = [LmdbMaker(os.path.join(tmp_dir, name), map_size=map_size, compress_level=compress_level)
                      for name in LMDB_NAMES]
            for records in _map(_cut_pair, jobs, workers, 'packing', 'image', progress):
                for key, lq_png, gt_png in records:
                    makers[0].put(lq_png, key, (patch, patch, 3))
                    makers[1].put(gt_png, key, (patch, patch, 3))
                    value_bytes['lq'] += len(lq_png)
                    value_bytes['gt'] += len(gt_png)
            for maker in makers:
                maker.close()
        except lmdb.MapFullError as error:
            _abandon(makers)
            raise FlareSRError(f'{out_dir}: LMDB map_size of {map_size} bytes is full; nothing was written') from error
        except lmdb.Error as error:
            _abandon(makers)
            raise FlareSRError(f'{out_dir}: LMDB write failed ({error}); nothing was written '
                               '(is the disk full?)') from error
    return dict(pairs=len(pairs), patches=num_patches, lq_bytes=value_bytes['lq'], gt_bytes=value_bytes['gt'],
                seconds=time.time() - start, map_size=map_size, out=out_dir)


def _abandon(makers):
    """Close half-written environments so their files can be deleted (the temp folder goes with them)."""
    for maker in makers:
        try:
            maker.txn.abort()
            maker.env.close()
            maker.txt_file.close()
        except lmdb.Error:
            pass
