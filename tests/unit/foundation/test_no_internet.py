"""Tests cannot reach Meta: the default Graph URL is a closed loopback port, and any connection
to a non-loopback address is refused before it leaves the machine."""

import socket

import httpx
import pytest

from resources.settings import get_settings


def test_tests_default_to_a_closed_loopback_port_not_graph_facebook_com():
    assert get_settings().graph_base_url == "http://127.0.0.1:9"


def test_a_connection_to_meta_is_refused_before_it_leaves_the_machine():
    with pytest.raises(httpx.ConnectError, match="loopback only"):
        httpx.get("http://157.240.0.35/v25.0/me", timeout=2)
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="loopback only"):
        sock.connect(("8.8.8.8", 443))
