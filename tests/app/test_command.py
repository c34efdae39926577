"""``faceanim app`` is a registered command with its own help; it binds this machine only by default."""

from __future__ import annotations

from faceanim.cli import build_parser, main


def test_app_command_is_registered_with_safe_defaults(capsys) -> None:
    assert main(["app", "--help"]) == 0
    assert "127.0.0.1" in capsys.readouterr().out
    args = build_parser().parse_args(["app"])
    assert args.host == "127.0.0.1" and args.port == 7860 and args.max_upload_mb == 100.0


def test_live_command_is_registered(capsys) -> None:
    assert main(["live", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--camera" in out and "--virtual-cam" in out and "--bench" in out
