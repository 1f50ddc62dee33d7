# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible's variables as plain Python values, for the filters that hand them to the plan or read reports."""

from __future__ import annotations

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover - Python 2 is not supported, this keeps sanity's import test quiet
    Mapping = dict


def plain(value):
    """Deep copy into plain Python types, so that modules and JSON see no Ansible wrappers."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return dict((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value  # anything else: the model names its type and refuses it
