"""Every place that starts the web process runs live sockets the same way: the trimmed WebSocket protocol
(server/api/live/protocol.py), without permessage-deflate. The live tests' servers use UVICORN_WS too."""

from __future__ import annotations

import shlex

from websockets.frames import Frame, Opcode

from server.api.live.protocol import IMPORT_PATH, UVICORN_WS, UVICORN_WS_ARGS, text_frame_head
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


def test_a_text_frame_head_is_what_websockets_writes_at_every_length_class() -> None:
    # the fan-out writes `text_frame_head(n) + bytes` straight to the transport: websockets' own framing must agree
    for size in (0, 1, 125, 126, 127, 65535, 65536, 70000):
        data = b"x" * size
        assert text_frame_head(size) + data == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[]), size
