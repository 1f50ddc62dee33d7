# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception of the plan: which host, which variable, which rule."""

from __future__ import annotations


class PlanError(Exception):
    """An inventory that cannot become a plan: which host, which variable, which rule."""

    def __init__(self, host, variable, rule):
        super(PlanError, self).__init__(host, variable, rule)
        self.host = host
        self.variable = variable
        self.rule = rule

    def __str__(self):
        return "%s: %s: %s" % (self.host, self.variable, self.rule)
