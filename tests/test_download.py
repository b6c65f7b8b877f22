"""Download and extraction, against a real HTTP server on 127.0.0.1."""
import errno
import gzip
import hashlib
import http.server
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zlib

import numpy as np
import pytest

import cifar10_input
from cifar10 import data
from cifar10.errors import Cifar10Error
from conftest import REPO, records_bytes, stripe_images


def archive_bytes(members):
    """A gzip tar of {name: bytes}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def cifar_members(records=4, images=None):
    """{name: bytes} of the official archive's batch files, each the same records: images
    uint8 [records, 32, 32, 3] (zeros by default)."""
    images = np.zeros([records, 32, 32, 3], np.uint8) if images is None else images
    batch = records_bytes(np.arange(records) % 10, images)
    names = list(data.TRAIN_FILES) + [data.TEST_FILE]
    return {f"{data.BATCHES_DIR}/{name}": batch for name in names}


@pytest.fixture
def server():
    """Serves {path: bytes}; a path in `short` announces more bytes than it sends, one in
    `stalled` sends its bytes, sets the event `sent` and then waits for `release`."""
    routes, short, stalled = {}, set(), set()
    sent, release = threading.Event(), threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path not in routes:
                self.send_error(404)
                return
            body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * (2 if self.path in short | stalled else 1)))
            self.end_headers()
            self.wfile.write(body)
            if self.path in stalled:
                self.wfile.flush()
                sent.set()
                release.wait(timeout=120)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.routes, httpd.short, httpd.stalled, httpd.sent = routes, short, stalled, sent
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    release.set()
    httpd.shutdown()
    httpd.server_close()


def test_downloads_with_progress_checks_md5_and_extracts(server, tmp_path, capsys):
    archive = archive_bytes(cifar_members())
    server.routes["/cifar-10-binary.tar.gz"] = archive
    batches = data.maybe_download_and_extract(str(tmp_path), server.url + "/cifar-10-binary.tar.gz",
                                              hashlib.md5(archive).hexdigest())
    out = capsys.readouterr().out
    assert ">> Downloading cifar-10-binary.tar.gz 100.0%" in out
    assert f"Successfully downloaded cifar-10-binary.tar.gz {len(archive)} bytes." in out
    assert (tmp_path / "cifar-10-binary.tar.gz").read_bytes() == archive
    assert sorted(os.listdir(batches)) == sorted(list(data.TRAIN_FILES) + [data.TEST_FILE])
    assert data.count_records(data.data_files(str(tmp_path))) == 20
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]


def test_an_md5_mismatch_is_rejected_and_leaves_no_file(server, tmp_path):
    server.routes["/a.tar.gz"] = archive_bytes(cifar_members())
    with pytest.raises(Cifar10Error, match=r"MD5 .* not the expected 0{32}: it was removed") as error:
        data.maybe_download_and_extract(str(tmp_path), server.url + "/a.tar.gz", "0" * 32)
    assert server.url + "/a.tar.gz" in str(error.value)
    assert os.listdir(tmp_path) == []


def test_a_truncated_download_leaves_no_partial_file(server, tmp_path):
    archive = archive_bytes(cifar_members())
    server.routes["/a.tar.gz"] = archive
    server.short.add("/a.tar.gz")
    with pytest.raises(Cifar10Error, match="stopped after|Could not download"):
        data.maybe_download_and_extract(str(tmp_path), server.url + "/a.tar.gz", hashlib.md5(archive).hexdigest())
    assert os.listdir(tmp_path) == []


def test_no_network_names_the_url_and_how_to_place_the_archive(tmp_path):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cifar-10-binary.tar.gz"
    with pytest.raises(Cifar10Error) as error:
        data.maybe_download_and_extract(str(tmp_path), url)
    assert f"Could not download {url}" in str(error.value)
    assert f"put it in {tmp_path}" in str(error.value)
    assert os.listdir(tmp_path) == []


def test_an_http_error_names_the_url(server, tmp_path):
    with pytest.raises(Cifar10Error, match=f"Could not download {server.url}/missing.tar.gz: Not Found"):
        data.maybe_download_and_extract(str(tmp_path), server.url + "/missing.tar.gz")


def test_an_archive_placed_by_hand_is_extracted_without_downloading(tmp_path):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(archive_bytes(cifar_members()))
    data.maybe_download_and_extract(str(tmp_path), "http://127.0.0.1:9/never-used")
    assert data.count_records(data.data_files(str(tmp_path), "test")) == 4


@pytest.mark.parametrize("evil", ["../escaped.bin", "/tmp/absolute.bin", "cifar-10-batches-bin/../../x.bin",
                                  "cifar-10-batches-bin/extra.py"])
def test_extraction_accepts_only_the_expected_members(tmp_path, evil):
    members = cifar_members()
    members[evil] = b"payload"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cifar-10-binary.tar.gz").write_bytes(archive_bytes(members))
    with pytest.raises(Cifar10Error, match="not part of the CIFAR-10 binary archive; nothing was extracted"):
        data.maybe_download_and_extract(str(tmp_path / "data"), "http://127.0.0.1:9/never-used")
    assert sorted(os.listdir(tmp_path)) == ["data"]
    assert os.listdir(tmp_path / "data") == ["cifar-10-binary.tar.gz"]


def test_extraction_rejects_a_link_member(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{data.BATCHES_DIR}/test_batch.bin")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(Cifar10Error, match="not part of the CIFAR-10 binary archive"):
        data.maybe_download_and_extract(str(tmp_path))
    assert not (tmp_path / data.BATCHES_DIR).exists()


def test_a_url_without_a_scheme_names_the_flag(capsys, tmp_path):
    status = cifar10_input.main([f"--data_dir={tmp_path}", "--data_url=example.com/cifar-10-binary.tar.gz"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err and err.count("\n") == 1, err
    assert "--data_url=example.com/cifar-10-binary.tar.gz is not a URL" in err
    assert "https://, http:// or file://" in err
    assert os.listdir(tmp_path) == []


def place_archive(data_dir, archive):
    """Put archive (bytes) into data_dir as a user would; returns data_dir as a str."""
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, data.ARCHIVE_NAME), "wb") as f:
        f.write(archive)
    return str(data_dir)


def extracts_without_crc_check(archive):
    """Whether tarfile alone (the old extraction) reads every member of archive without
    an error: it stops at the end-of-archive block, before the gzip trailer."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                tar.extractfile(member).read()
        return True
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return False


def damaged(archive, position):
    return archive[:position] + bytes([archive[position] ^ 0x10]) + archive[position + 1:]


def test_a_flipped_bit_in_the_compressed_data_is_caught_by_the_gzip_crc(tmp_path):
    images = stripe_images(np.arange(300) % 10, np.random.default_rng(0))
    archive = archive_bytes(cifar_members(300, images))
    # The first position, from the middle on, whose damage tarfile alone extracts without
    # complaint (wrong bytes, silently) but that the CRC-32 catches.
    position = next(p for p in range(len(archive) // 2, len(archive) // 2 + 200)
                    if extracts_without_crc_check(damaged(archive, p)))
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(damaged(archive, position))
    data_dir = place_archive(tmp_path / "data", damaged(archive, position))

    with pytest.raises(Cifar10Error, match="is not a valid gzip tar archive .*CRC check failed.*nothing was "
                                           "extracted") as error:
        data.maybe_download_and_extract(data_dir, "http://127.0.0.1:9/never-used")

    assert f"Delete {data_dir}/{data.ARCHIVE_NAME}" in str(error.value)
    assert os.listdir(data_dir) == [data.ARCHIVE_NAME]  # no cifar-10-batches-bin/, no staging folder


@pytest.mark.parametrize("position, complaint", [(-8, "CRC check failed"), (-4, "Incorrect length")])
def test_a_damaged_gzip_trailer_is_caught(tmp_path, position, complaint):
    archive = damaged(archive_bytes(cifar_members()), position)  # the CRC-32, then the length
    assert extracts_without_crc_check(archive)
    data_dir = place_archive(tmp_path / "data", archive)
    with pytest.raises(Cifar10Error, match=f"is not a valid gzip tar archive .*{complaint}"):
        data.maybe_download_and_extract(data_dir, "http://127.0.0.1:9/never-used")
    assert os.listdir(data_dir) == [data.ARCHIVE_NAME]


@pytest.mark.parametrize("name, limit", [(data.TEST_FILE, data.MAX_FILE_BYTES),
                                         ("readme.html", data.MAX_OTHER_FILE_BYTES)])
def test_a_member_larger_than_in_the_official_archive_is_refused_before_extracting(tmp_path, name, limit):
    # Only the member's header and a little data: the size the header declares is refused unread.
    header = tarfile.TarInfo(f"{data.BATCHES_DIR}/{name}")
    header.size = limit + 1
    data_dir = place_archive(tmp_path / "data", gzip.compress(header.tobuf() + b"\0" * 4096))

    with pytest.raises(Cifar10Error, match=f"holds {data.BATCHES_DIR}/{name} of {limit + 1:,} bytes, more than "
                                           f"the {limit:,} it has in the official archive; nothing was extracted"):
        data.maybe_download_and_extract(data_dir, "http://127.0.0.1:9/never-used")
    assert os.listdir(data_dir) == [data.ARCHIVE_NAME]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o002, 0o775), (0o077, 0o700)])
def test_the_extracted_folder_has_the_mode_the_umask_gives(tmp_path, umask, mode):
    data_dir = place_archive(tmp_path / "data", archive_bytes(cifar_members()))
    previous = os.umask(umask)
    try:
        batches = data.maybe_download_and_extract(data_dir, "http://127.0.0.1:9/never-used")
    finally:
        os.umask(previous)
    assert os.stat(batches).st_mode & 0o777 == mode
    assert os.stat(os.path.join(batches, data.TEST_FILE)).st_mode & 0o777 == mode & 0o666


def test_a_full_disk_during_extraction_in_process(tmp_path, monkeypatch):
    """The disk fills up while a member is written. Simulated by a shutil.copyfileobj that
    writes part of the data and then fails as write(2) does on a full disk, so that this
    runs everywhere; test_a_full_disk_in_a_small_tmpfs fills a real file system."""
    def copy_until_full(src, dst):
        dst.write(src.read(1000))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "copyfileobj", copy_until_full)
    data_dir = place_archive(tmp_path / "data", archive_bytes(cifar_members()))
    with pytest.raises(Cifar10Error) as error:
        data.maybe_download_and_extract(data_dir, "http://127.0.0.1:9/never-used")

    assert str(error.value).startswith(f"Could not extract {data_dir}/{data.ARCHIVE_NAME}: No space left on device "
                                       f"in {data_dir}; no partial file was left behind.")
    assert "free some space, or pass another --data_dir" in str(error.value)
    assert os.listdir(data_dir) == [data.ARCHIVE_NAME]


def run_in_small_tmpfs(mount, size, command):
    """Run shell command in a private mount namespace in which mount is a new tmpfs of
    size bytes, then list it: returns (CompletedProcess, the names in the tmpfs at the end).
    Skips the test where this system lets no user namespace mount a tmpfs."""
    os.makedirs(mount, exist_ok=True)
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=4096 tmpfs {mount}"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.decode().strip()}")
    script = (f"mount -t tmpfs -o size={size} tmpfs {mount} || exit 99\n"
              f"{command}\n"
              f"status=$?; echo '--- listing'; ls -A {mount}; exit $status")
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 99, done.stderr
    return done, done.stdout.split("--- listing\n", 1)[1].split()


def test_a_full_disk_in_a_small_tmpfs_during_extraction_and_download(server, tmp_path):
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(archive_bytes(cifar_members(300)))  # about 10 KB, 5.5 MB extracted
    mount = str(tmp_path / "small")
    done, listing = run_in_small_tmpfs(mount, 1 << 20, f"cp {archive} {mount}/{data.ARCHIVE_NAME} && "
                                                       f"{sys.executable} cifar10_input.py --data_dir={mount}")
    assert done.returncode == 1, done.stderr
    assert (f"error: Could not extract {mount}/{data.ARCHIVE_NAME}: No space left on device in {mount}; no "
            "partial file was left behind." in done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert listing == [data.ARCHIVE_NAME]

    server.routes["/big.tar.gz"] = os.urandom(3 << 20)
    url = server.url + "/big.tar.gz"
    done, listing = run_in_small_tmpfs(mount, 1 << 20, f"{sys.executable} cifar10_input.py --data_dir={mount} "
                                                       f"--data_url={url}")
    assert done.returncode == 1, done.stderr
    assert f"error: Could not download {url}: No space left on device in {mount}" in done.stderr
    assert "Traceback" not in done.stderr
    assert listing == []


def test_sigterm_during_a_download_exits_143_and_leaves_no_partial_file(server, tmp_path):
    server.routes["/cifar-10-binary.tar.gz"] = b"x" * 65536
    server.stalled.add("/cifar-10-binary.tar.gz")
    data_dir = tmp_path / "data"
    process = subprocess.Popen([sys.executable, str(REPO / "cifar10_input.py"), f"--data_dir={data_dir}",
                                f"--data_url={server.url}/cifar-10-binary.tar.gz"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.sent.wait(timeout=120), "the download did not start"
        deadline = time.monotonic() + 30
        while not [n for n in os.listdir(data_dir) if n.startswith(f".{data.ARCHIVE_NAME}.")]:
            assert time.monotonic() < deadline, os.listdir(data_dir)
            time.sleep(0.05)
        time.sleep(0.5)  # into the read that waits for the rest
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "SIGTERM" in err, err
    assert os.listdir(data_dir) == []  # the hidden .part file was removed
