"""Every place that starts the web process runs live sockets the same way: the trimmed WebSocket protocol
(server/api/live/protocol.py), without permessage-deflate. The live tests' servers use UVICORN_WS too."""

from __future__ import annotations

import shlex

from server.api.live.protocol import IMPORT_PATH, UVICORN_WS, UVICORN_WS_ARGS
from server.settings import ROOT


def test_the_procfile_and_the_dockerfile_name_the_protocol_and_turn_deflate_off() -> None:
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    args = shlex.split(web.removeprefix("web:"))
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    command = dockerfile[dockerfile.index("CMD ["):]
    for pair in zip(UVICORN_WS_ARGS[::2], UVICORN_WS_ARGS[1::2], strict=True):
        assert args[args.index(pair[0]) + 1] == pair[1], web
        assert f'"{pair[0]}", "{pair[1]}"' in command.replace("\\\n     ", ""), command


def test_the_keywords_and_the_command_line_agree() -> None:
    assert UVICORN_WS == {"ws": IMPORT_PATH, "ws_per_message_deflate": False}
    assert UVICORN_WS_ARGS == ("--ws", IMPORT_PATH, "--ws-per-message-deflate", "false")
