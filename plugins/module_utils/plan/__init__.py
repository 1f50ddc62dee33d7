# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster plan: inventory variables in, one validated plan per cluster out.

build.build_plan() is the entry point; docs/cluster-plan.md maps the files.
Stdlib only and Python 3.8 syntax: validate_node_ids ships this package to
the host it runs on.
"""
