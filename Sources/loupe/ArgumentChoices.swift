// Library enums as command-line choices: argument parsing checks them and lists them in --help.

import ArgumentParser
import LoupeInterp

extension PatchMetricKind: ExpressibleByArgument {}
