//! The typed errors of the RPM parsers and the solver. The layers above (repo reading, downloads, `build_repo`)
//! add context with anyhow and keep these as the source, so a caller can still ask `e.downcast_ref::<Error>()`.

/// What went wrong parsing an EVR or a rich dependency, or solving a closure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An epoch that is not a number (`x:1.0`).
    #[error("epoch '{epoch}' is not a number")]
    Epoch {
        /// The epoch as written.
        epoch: String,
    },
    /// An EVR with an empty version (`1:-2`).
    #[error("'{evr}' has no version")]
    NoVersion {
        /// The EVR as written.
        evr: String,
    },
    /// A rich dependency rpm would not read (`(a or`).
    #[error("rich dependency '{dep}': {message} at offset {offset}")]
    Rich {
        /// The whole dependency.
        dep: String,
        /// What was expected or found.
        message: String,
        /// The byte offset where parsing stopped.
        offset: usize,
    },
    /// A rich dependency whose version rpm would not read (`(a >= x:1)`).
    #[error("rich dependency '{dep}': {evr} at offset {offset}")]
    RichVersion {
        /// The whole dependency.
        dep: String,
        /// The byte offset after the version.
        offset: usize,
        /// The version's own error (in the message, so not also a `source`).
        evr: Box<Error>,
    },
    /// A rich dependency with text after its closing parenthesis.
    #[error("rich dependency '{dep}': unexpected text after the closing parenthesis")]
    RichTrailing {
        /// The whole dependency.
        dep: String,
    },
    /// A repository checksum type kubeha cannot compute.
    #[error("checksum type '{kind}' is not supported (use sha1 or sha2)")]
    ChecksumType {
        /// The type as repomd.xml names it.
        kind: String,
    },
    /// Metadata or a package whose bytes do not match the checksum repomd.xml (or primary) gives.
    #[error("{what}: {kind} checksum mismatch: repomd.xml says {expected}, the file has {actual}")]
    ChecksumMismatch {
        /// The file.
        what: String,
        /// The checksum type.
        kind: String,
        /// What the metadata says.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// A download whose bytes do not match the metadata's checksum.
    #[error(
        "{url}: {kind} checksum mismatch: the metadata says {expected}, the download has {actual}"
    )]
    DownloadMismatch {
        /// The URL.
        url: String,
        /// The checksum type.
        kind: String,
        /// What the metadata says.
        expected: String,
        /// What the downloaded bytes hash to.
        actual: String,
    },
    /// A repository answered a GET with an HTTP error status.
    #[error("GET {url}: HTTP {status}")]
    Http {
        /// The URL.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// A repository refused the request for credentials (HTTP 401).
    #[error("GET {url}: HTTP 401: {}", match user {
        Some(u) => format!("the credentials of user {u} are refused"),
        None => "the repo needs credentials (the repo's username with password-file or password-env, or kubeha \
                 bundle build --repo-credentials)".to_string(),
    })]
    Unauthorized {
        /// The URL.
        url: String,
        /// The user whose credentials were sent, if any.
        user: Option<String>,
    },
    /// Packages that failed the signature check against their repo's key (the bundle is not written).
    #[error(
        "{} package(s) failed the signature check against their repo's gpgkey (unsigned, or signed by another key), \
         so the bundle is not written:\n  {}",
        refused.len(),
        refused.join("\n  ")
    )]
    Signatures {
        /// One line per refused package: file, repo and rpm's verdict.
        refused: Vec<String>,
    },
    /// A tool (createrepo_c, rpmkeys) that could not start or exited with a failure: the runner's error, with the
    /// command line, the exit status and stderr.
    #[error(transparent)]
    Command(#[from] kubeha_runner::Error),
    /// A `file://` URL that is not absolute.
    #[error("'{url}' is not an absolute file:// URL (use file:///path)")]
    FileUrl {
        /// The URL.
        url: String,
    },
    /// A URL of a scheme kubeha does not read.
    #[error("'{url}': only http://, https:// and file:// URLs are supported")]
    UrlScheme {
        /// The URL.
        url: String,
    },
    /// A profile with packages but no repositories.
    #[error("the profile has packages but no repos to take them from")]
    NoRepos,
    /// A repository user without a password source.
    #[error("repos[{index}] ({repo}): a username needs password-env or password-file")]
    NoPassword {
        /// The repository's index in the profile.
        index: usize,
        /// Its name.
        repo: String,
    },
    /// A gpgkey that is not an ASCII-armored OpenPGP public key.
    #[error("repo {repo}: gpgkey {url} is not an ASCII-armored OpenPGP public key")]
    GpgKeyFormat {
        /// The repository.
        repo: String,
        /// The key's URL.
        url: String,
    },
    /// Two repositories whose keys would be stored under the same file name.
    #[error("repo {repo}: its key would be stored as {path}, which another repo's key already is; rename one of the repos")]
    KeyClash {
        /// The repository.
        repo: String,
        /// The bundle path both would take.
        path: String,
    },
    /// Two different packages that would be stored under the same file name.
    #[error("two packages would be stored as rpms/{file}; repos {repo} and another carry different files")]
    FileClash {
        /// The file name.
        file: String,
        /// One of the repositories.
        repo: String,
    },
    /// A package location that is not an `.rpm` file name.
    #[error("{nevra}: location '{href}' is not an .rpm file name")]
    NotRpmFile {
        /// The package.
        nevra: String,
        /// Its location.
        href: String,
    },
    /// A `<package>` in primary.xml without a name or location.
    #[error("a <package> has no name or location (near byte {offset})")]
    PackageIncomplete {
        /// The parser's byte offset.
        offset: u64,
    },
    /// A requested package that no repository has.
    #[error(
        "package '{spec}' is not in any of the repos (for this arch); give name, name-version or name-version-release"
    )]
    NoSuchPackage {
        /// The request as the profile writes it.
        spec: String,
    },
    /// A repomd.xml without `<data>` records.
    #[error("no <data> records: not a repomd.xml")]
    NotRepomd,
    /// zchunk-compressed metadata.
    #[error("{what} is zchunk-compressed, which is not supported")]
    Zchunk {
        /// The metadata file.
        what: String,
    },
    /// The requested packages have no solution; `explanation` is the solver's account, with what nothing provides.
    #[error("{explanation}")]
    Unsolvable {
        /// The requests, the missing providers and resolvo's explanation, one per line.
        explanation: String,
    },
    /// The solver was cancelled.
    #[error("dependency resolution was cancelled")]
    Cancelled,
}
