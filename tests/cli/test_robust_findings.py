"""The adversary's findings that are no command line or checkpoint file (those are rows of
tests/cli/test_robust_cli.py and tests/checkpoint/test_robust_checkpoint.py; a combining accent typed in the
app is a case of tests/app/test_app.py's out-of-vocabulary prefix): each gets a message naming the real
problem."""

import errno
import os
import socket

import pytest

from dsmini.cli.serve import ServeError, check_port_free, free_ports
from dsmini.data import CorpusError, load_corpus


def test_a_fifo_as_corpus_is_named_and_never_opened(tmp_path):
    fifo = tmp_path / "names.txt"
    os.mkfifo(fifo)  # opening it would block until a writer came
    with pytest.raises(CorpusError, match="is a FIFO \\(named pipe\\), not a regular file"):
        load_corpus(str(fifo))


def test_too_many_open_files_is_said_in_words(monkeypatch):
    def no_more(*args, **kwargs):
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(socket, "socket", no_more)
    with pytest.raises(ServeError, match="too many open files: raise the limit \\(ulimit -n\\)"):
        free_ports(2)
    with pytest.raises(ServeError, match="too many open files"):
        check_port_free("127.0.0.1", 8599)
