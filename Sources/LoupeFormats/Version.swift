/// Loupe's version, as `loupe --version` prints it and as shard results record it.
public let loupeVersion = "0.2.0"
