# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backends: one module per tool that spells the plan's rules (plan/rules.py) in its own syntax."""
