"""Download and extraction, against a real HTTP server on 127.0.0.1."""
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading

import numpy as np
import pytest

from cifar10 import data
from cifar10.config import Cifar10Error
from conftest import records_bytes


def archive_bytes(members):
    """A gzip tar of {name: bytes}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def cifar_members(records=4):
    images = np.zeros([records, 32, 32, 3], np.uint8)
    batch = records_bytes(np.arange(records) % 10, images)
    names = list(data.TRAIN_FILES) + [data.TEST_FILE]
    return {f"{data.BATCHES_DIR}/{name}": batch for name in names}


@pytest.fixture
def server():
    """Serves {path: bytes}; a path in `short` announces more bytes than it sends."""
    routes, short = {}, set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path not in routes:
                self.send_error(404)
                return
            body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * (2 if self.path in short else 1)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.routes, httpd.short = routes, short
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
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
