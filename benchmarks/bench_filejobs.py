"""Throughput of a file job (the 57-feature table) here, on one Dask worker and on two.

The job is ``write_feature_table_files`` (file decoding included: each FLAC
file is read, its first 30 s resampled to 22050 Hz if need be, turned into
the 57 features and appended to a CSV file) over ``--n-files`` files: the
dev tracks under ``--data`` symlinked again and again into a temporary
folder (a link's size and modification time are its target's, so every
file is computed anew; no cache is involved). Three routes, alternating
within each round (``--rounds``):

* ``here``: in this process, one block after another, one thread
  (``n_jobs=1``, all BLAS/OpenMP pools at one thread);
* ``dask 1w``: a :class:`dask.distributed.LocalCluster` of 1 worker process
  with 1 thread, blocks of ``--block-size`` files;
* ``dask 2w``: the same with 2 worker processes of 1 thread each.

Both clusters are started before the first round and warmed up (imports,
numba's compiled code) on a few files; their start is not timed. Their
workers are started without the ``MALLOC_TRIM_THRESHOLD_=65536`` that
Dask's nannies put in their environment by default
(``distributed.nanny.pre-spawn-environ``): setting it turns off glibc's
adaptive mmap threshold, so every large array (a 30 s waveform is 2.6 MB)
is a fresh ``mmap`` whose pages are faulted in and zeroed again, which
costs this job about 35 % more CPU (measured on one core, 48 files: 8.0 s
without it, 10.8 s with it). ``--dask-malloc-defaults`` keeps Dask's
setting. For each
run it prints the wall time, files per second, the CPU seconds of the
client and of the workers (``time.process_time`` in each process, so the
work done, whatever else runs on the machine) and the 1-minute load average
before and after: the speed-up of two workers over one is only meaningful
when the load stays below the number of cores minus the job's own.

Usage::

    python benchmarks/bench_filejobs.py                       # 100 files, 2 rounds
    python benchmarks/bench_filejobs.py --n-files 200 --rounds 3 --block-size 8

Memory (``--memory``): peak memory and wall time of the command
``specgenre features DIR -o table.csv -q`` on each of ``--n-files`` files
(the tracks of ``--data``, a folder of genre folders, linked again and again
into genre folders), run here (``local``) and with ``--scheduler`` on a
fresh :class:`~dask.distributed.LocalCluster` of 2 worker processes of one
thread (``cluster``; started in a child process, not timed, same
environment as above). A sampler reads every 0.2 s the resident memory of
every process involved (the command and, on the cluster, the scheduler,
nannies and workers) and every 2 s their proportional set size (PSS: shared
pages split between the processes that map them, so the sum is the memory
the job takes from the machine). Printed per run: the command's own peak
RSS, the cluster's peak summed RSS, the peak of the summed RSS and of the
summed PSS over all processes, wall time, CPU seconds of the command and of
the cluster, and the load average before and after::

    python benchmarks/bench_filejobs.py --memory --n-files 100 1000 10000

Dask's workers sample the stack of their running task every 10 ms and keep
the last 1000 one-second profiles (``distributed.admin.low-level-log-length``):
for this job, with deep stacks, their memory grows for about 17 minutes
(then the queue is full). ``--no-worker-profile`` starts the cluster with
the profiler off
(``distributed.worker.profile.enabled: false``).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # inherited by the clusters' worker processes

import argparse  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from _tracks import repeated_tracks  # noqa: E402  (benchmarks/_tracks.py)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan_dev"
AUDIO = {".flac", ".wav", ".au", ".ogg"}


def _collection(data, n_files, folder):
    """``n_files`` links to the tracks under ``data``, cycling; their genres and ids."""
    tracks = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in AUDIO)
    if not tracks:
        raise SystemExit(f"no audio files under {data}; give --data")
    files, labels, ids = [], [], []
    for i in range(n_files):
        target = tracks[i % len(tracks)]
        link = Path(folder) / f"{i:05d}-{target.name}"
        link.symlink_to(target.resolve())
        files.append(str(link))
        labels.append(target.parent.name)
        ids.append(f"{target.stem}.{i:05d}")
    return files, labels, ids


def _worker_cpu(client):
    """CPU seconds used so far by each worker process of ``client``'s cluster."""
    return client.run(time.process_time) if client is not None else {}


def _run(route, client, files, labels, ids, out, block_size):
    from specgenre.feature_table import write_feature_table_files

    load0, cpu0, w0 = os.getloadavg()[0], time.process_time(), _worker_cpu(client)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = write_feature_table_files(out, files, labels, ids, client=client, n_jobs=1,
                                           block_size=block_size)
    wall = time.perf_counter() - t0
    cpu_client = time.process_time() - cpu0
    w1 = _worker_cpu(client)
    cpu_workers = sum(w1[k] - w0.get(k, 0.0) for k in w1)
    load1 = os.getloadavg()[0]
    assert report.n_rows == len(files), report
    return {"route": route, "wall": wall, "files_s": len(files) / wall, "cpu_client": cpu_client,
            "cpu_workers": cpu_workers, "load0": load0, "load1": load1}


def _print(r):
    print(f"  {r['route']:<8} {r['wall']:8.1f} {r['files_s']:8.2f} {r['cpu_client']:10.1f} "
          f"{r['cpu_workers']:11.1f} {r['load0']:6.2f} -> {r['load1']:5.2f}", flush=True)


#: Child process of ``--memory``'s cluster route: a LocalCluster that prints its
#: address and lives until its standard input closes.
_CLUSTER = """
import logging, sys, dask
from distributed import LocalCluster
config = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
if sys.argv[1] == "no-profile":
    config["distributed.worker.profile.enabled"] = False
with dask.config.set(config):
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()
cluster.close()
"""


class _Sampler(threading.Thread):
    """Peak summed RSS / PSS of process trees, sampled until :meth:`stop`."""

    def __init__(self, roots):
        super().__init__(daemon=True)
        self.roots, self.peaks, self._done = roots, {}, threading.Event()

    def _peak(self, key, value):
        self.peaks[key] = max(self.peaks.get(key, 0), value)

    def run(self):
        import psutil

        tick = 0
        while not self._done.wait(0.2):
            total_rss = total_pss = 0
            for name, pid in self.roots.items():
                rss = pss = 0
                for proc in _tree(pid):
                    try:
                        rss += proc.memory_info().rss
                        if tick % 10 == 0:
                            pss += proc.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
                self._peak(f"{name} rss", rss)
                total_rss += rss
                total_pss += pss
            self._peak("rss", total_rss)
            if tick % 10 == 0:
                self._peak("pss", total_pss)
            tick += 1

    def stop(self):
        self._done.set()
        self.join()
        return self.peaks


def _tree(pid):
    """Process ``pid`` and its descendants (none if it has ended)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _tree_cpu(pid):
    """CPU seconds used so far by process ``pid`` and its descendants."""
    import psutil

    total = 0.0
    for proc in _tree(pid):
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _memory_run(route, folder, out, block_size, profile=True):
    """One ``specgenre features`` run over ``folder``, here or on a fresh 2-worker cluster."""
    command = [sys.executable, "-c", "import sys; from specgenre.cli import main; "
               "sys.exit(main())", "features", str(folder), "-o", str(out), "-q",
               "--block-size", str(block_size)]
    cluster = None
    roots = {}
    if route == "cluster":
        cluster = subprocess.Popen([sys.executable, "-c", _CLUSTER,
                                    "profile" if profile else "no-profile"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        address = cluster.stdout.readline().strip()
        if not address.startswith("tcp://"):
            raise SystemExit(f"the LocalCluster did not start: {address!r}")
        command += ["--scheduler", address]
        roots["cluster"] = cluster.pid
        cluster_cpu0 = _tree_cpu(cluster.pid)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    roots["command"] = job.pid
    sampler = _Sampler(roots)
    sampler.start()
    _, status, usage = os.wait4(job.pid, 0)
    wall = time.perf_counter() - start
    peaks = sampler.stop()
    job.returncode = os.waitstatus_to_exitcode(status)
    cluster_cpu = 0.0
    if cluster is not None:
        cluster_cpu = _tree_cpu(cluster.pid) - cluster_cpu0
        cluster.stdin.close()
        cluster.wait(timeout=60)
    if job.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {job.returncode}")
    return {"route": route, "command_rss": usage.ru_maxrss * 1024,
            "cluster_rss": peaks.get("cluster rss", 0), "rss": peaks.get("rss", 0),
            "pss": peaks.get("pss", 0), "wall": wall,
            "cpu_command": usage.ru_utime + usage.ru_stime, "cpu_cluster": cluster_cpu,
            "load0": load0, "load1": os.getloadavg()[0]}


def memory_main(args):
    gb = 1e9
    print(f"specgenre features on the tracks of {args.data} repeated; block size "
          f"{args.block_size} (local 64); {os.cpu_count()} cores, OMP_NUM_THREADS=1")
    print(f"{'files':>6} {'route':<8}{'command RSS':>12}{'cluster RSS':>12}{'sum RSS':>9}"
          f"{'sum PSS':>9}{'wall s':>9}{'CPU s':>8}{'cluster CPU s':>14}  load before -> after")
    for n in args.n_files:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "tracks"
            folder.mkdir()
            repeated_tracks(args.data, n, folder)
            for route in args.routes:
                r = _memory_run(route, folder, Path(tmp) / f"{route}.csv",
                                64 if route == "local" else args.block_size,
                                profile=not args.no_worker_profile)
                print(f"{n:>6} {route:<8}{r['command_rss'] / gb:>10.2f}GB"
                      f"{r['cluster_rss'] / gb:>10.2f}GB{r['rss'] / gb:>7.2f}GB"
                      f"{r['pss'] / gb:>7.2f}GB{r['wall']:>9.0f}{r['cpu_command']:>8.0f}"
                      f"{r['cpu_cluster']:>14.0f}  {r['load0']:.2f} -> {r['load1']:.2f}",
                      flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="folder of audio tracks (default: %(default)s)")
    parser.add_argument("--n-files", type=int, nargs="+", default=[100],
                        help="files in the collection (--memory: one run per number; "
                        "default: %(default)s)")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory and wall time of 'specgenre features', here and on "
                        "a LocalCluster")
    parser.add_argument("--no-worker-profile", action="store_true",
                        help="--memory: start the cluster's workers without Dask's statistical "
                        "profiler (distributed.worker.profile.enabled: false)")
    parser.add_argument("--routes", nargs="+", choices=["local", "cluster"],
                        default=["local", "cluster"], help="routes of --memory")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each route, alternating (default: %(default)s)")
    parser.add_argument("--block-size", type=int, default=8,
                        help="files per block on the clusters (default: %(default)s)")
    parser.add_argument("--dask-malloc-defaults", action="store_true",
                        help="start the workers with Dask's MALLOC_TRIM_THRESHOLD_=65536")
    args = parser.parse_args(argv)
    if args.memory:
        return memory_main(args)
    if len(args.n_files) != 1:
        parser.error("--n-files takes one number without --memory")
    args.n_files = args.n_files[0]

    import dask
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # the scheduler runs here

    print(f"{args.n_files} files (links to the tracks of {args.data}); features table, "
          f"block size {args.block_size} on the clusters, 64 here")
    print(f"{os.cpu_count()} cores; load average at start: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min)")
    with tempfile.TemporaryDirectory() as tmp:
        music = Path(tmp) / "music"
        music.mkdir()
        files, labels, ids = _collection(args.data, args.n_files, music)
        clusters = {}
        try:
            trim = {} if args.dask_malloc_defaults else {
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
            for n in (1, 2):
                with dask.config.set(trim):
                    cluster = LocalCluster(n_workers=n, threads_per_worker=1,
                                           processes=True, host="127.0.0.1",
                                           dashboard_address=None, silence_logs=logging.ERROR)
                clusters[f"dask {n}w"] = (cluster, Client(cluster))
            # warm-up, not timed: imports and numba's compiled code in every process
            out = str(Path(tmp) / "warm.csv")
            _run("here", None, files[:2], labels[:2], ids[:2], out, 64)
            for name, (_, client) in clusters.items():
                _run(name, client, files[:4], labels[:4], ids[:4], out, 1)
            print(f"\n  {'route':<8} {'wall s':>8} {'files/s':>8} {'client CPU':>10} "
                  f"{'workers CPU':>11} {'load before -> after':>20}")
            results = []
            for _ in range(args.rounds):
                for name in ("here", "dask 1w", "dask 2w"):
                    client = clusters[name][1] if name != "here" else None
                    size = 64 if client is None else args.block_size
                    results.append(_run(name, client, files, labels, ids,
                                        str(Path(tmp) / "table.csv"), size))
                    _print(results[-1])
        finally:
            for cluster, client in clusters.values():
                client.close()
                cluster.close()
    print("\nmedian over rounds:")
    med = {}
    for name in ("here", "dask 1w", "dask 2w"):
        runs = [r for r in results if r["route"] == name]
        med[name] = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu_client"] + r["cpu_workers"] for r in runs)
        print(f"  {name:<8} {med[name]:8.1f} s wall  {args.n_files / med[name]:6.2f} files/s  "
              f"{cpu:8.1f} s CPU (client + workers)")
    print(f"\n  2 workers over 1: {med['dask 1w'] / med['dask 2w']:.2f}x wall "
          f"(target >= 1.7x on 2 free cores); 1 worker over here: "
          f"{med['here'] / med['dask 1w']:.2f}x")
    print(f"  load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
