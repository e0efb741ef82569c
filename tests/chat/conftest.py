"""Fixtures of the chat tests: tools that count what they run, and the loopback server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from chat_tools import counting_tools


@pytest.fixture
def tools():
    return counting_tools()


@pytest.fixture
def sse_server():
    from chat_sse_server import ScriptedChatServer

    server = ScriptedChatServer()
    yield server
    server.close()


@pytest.fixture
def openai_client(sse_server):
    """The official client on the loopback server (no retries: a failure must show)."""
    from openai import OpenAI

    client = OpenAI(base_url=sse_server.base_url, api_key="none", max_retries=0, timeout=30)
    yield client
    client.close()
