// Library enums as command-line choices: argument parsing checks them and lists them in --help.

import ArgumentParser
import LoupeInterp
import LoupeTraining

extension PatchMetricKind: ExpressibleByArgument {}
extension LensNorm: ExpressibleByArgument {}
extension HeadPattern: ExpressibleByArgument {}
extension TraceKind: ExpressibleByArgument {}
extension CompositionMode: ExpressibleByArgument {}
extension ProbeKind: ExpressibleByArgument {}
extension SAEArchitecture: ExpressibleByArgument {}
extension AblationKind: ExpressibleByArgument {}
