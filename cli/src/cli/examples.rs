//! The examples each `--help` ends with: real command lines, runnable as they are
//! (with the files they name).

pub const TOP: &str = "\
Examples:
  dockhand convert image.tar layout/            docker save tar -> OCI layout
  dockhand inspect image.tar                    list the images, @N and tags
  dockhand verify image.tar                     check every digest and diff_id
  dockhand completions bash > ~/.local/share/bash-completion/completions/dockhand

Run `dockhand COMMAND --help` for a command's options and examples.";

pub const CONVERT: &str = "\
Examples:
  dockhand convert image.tar layout/                        docker save -> OCI layout
  dockhand convert --to oci-archive image.tar.gz oci.tar    to an OCI archive
  dockhand convert oci:layout:1.0 docker-archive:img.tar:myapp:1.0
  dockhand convert --image @1 --to dir multi.tar one-dir/   one image of several
  dockhand convert --force --layer-compression zstd image.tar layout/
  docker save busybox | dockhand convert -q - - --to oci-archive > busybox-oci.tar
  dockhand convert docker://registry.example.com/team/app:1.4 app.tar
  dockhand convert --all --referrers docker://registry.example.com/team/app:1.4 oci-archive:app.tar
  dockhand convert app.tar base.tar oci-archive:bundle.tar  several sources, one output
  dockhand convert --images-from list.txt oci:mirror/";

pub const INSPECT: &str = "\
Examples:
  dockhand inspect image.tar                    a table: @N, image ID, platform, tags
  dockhand inspect --json image.tar | jq '.images[].tags'
  dockhand inspect --image @0 oci:layout/
  dockhand inspect --all docker://docker.io/library/busybox:latest
  dockhand inspect --format table --filter 'reference=app:*' layout/   as docker images
  dockhand inspect --format '{{.ID}}\\t{{.Repository}}:{{.Tag}}' --filter dangling=false images.tar
  dockhand inspect --tree images.tar            parents and children";

/// `dockhand history --help`.
pub const HISTORY: &str = "\
Examples:
  dockhand history image.tar                    build steps, newest first, as docker history
  dockhand history --no-trunc --image @1 multi.tar
  dockhand history --json oci:layout/ | jq '.images[0].history[].created_by'
  dockhand history docker://docker.io/library/busybox:latest";

/// `dockhand export --help`.
pub const EXPORT: &str = "\
Examples:
  dockhand export image.tar rootfs.tar          the filesystem, as docker export writes it
  dockhand export --image @1 multi.tar - | tar -tvf -
  dockhand export docker://docker.io/library/busybox:latest busybox-rootfs.tar
  dockhand export docker-daemon:app:1.4 - | docker import - app-flat:1.4";

pub const DIFF: &str = "\
Examples:
  dockhand diff app-1.3.tar app-1.4.tar          A, D and C lines, as docker diff prints
  dockhand diff --image @0 --image @1 multi.tar  two images of one source
  dockhand diff --json oci:layout:1.3 oci:layout:1.4 | jq -r '.changed[].path'
  dockhand diff docker-daemon:app:1.4 docker://registry.example.com/app:1.4";

pub const VERIFY: &str = "\
Examples:
  dockhand verify image.tar                     every blob of every image
  dockhand verify --image busybox:latest image.tar
  dockhand verify -q layout/ && echo intact     exit status only
  dockhand verify --key cosign.pub oci:mirror/:app   also a cosign signature per image";

pub const TAGS: &str = "\
Examples:
  dockhand tags docker://registry.example.com/team/app
  dockhand tags --tls-verify=false docker://localhost:5000/busybox
  dockhand tags --digests docker://registry.example.com/team/app   tags by image, platforms
  dockhand tags --digests --json docker://localhost:5000/busybox | jq '.groups[].tags'";

pub const CATALOG: &str = "\
Examples:
  dockhand catalog docker://registry.example.com          every repository, one a line
  dockhand catalog --json --tls-verify=false docker://localhost:5000";

pub const TAG: &str = "\
Examples:
  dockhand tag docker://registry.example.com/team/app:1.4.2 1.4 1 latest
  dockhand tag docker://localhost:5000/app@sha256:4c5e... stable
  dockhand tag oci:layout:1.4.2 1.4 latest         in place: two more ref names
  dockhand tag docker-archive:app.tar:app:1.4.2 registry.example.com/team/app:1.4
  dockhand tag docker-archive:images.tar:@1 app:stable   the second image of the archive";

/// `dockhand untag --help`.
pub const UNTAG: &str = "\
Examples:
  dockhand untag app.tar app:old                   as docker rmi removes a name
  dockhand untag oci:layout 1.3 1.3.9              two ref names";

/// `dockhand rm --help`.
pub const RM: &str = "\
Examples:
  dockhand rm --image app:old layout/              the image, its names and its blobs
  dockhand rm --image 6f2d02a983f5 --image @3 images.tar
  dockhand rm oci-archive:bundle.tar:app:1.3";

/// `dockhand gc --help`.
pub const GC: &str = "\
Examples:
  dockhand gc layout/                              as umoci gc
  dockhand gc --dry-run layout/                    list what would go";

pub const DELETE: &str = "\
Examples:
  dockhand delete docker://registry.example.com/team/app@sha256:4c5e...
  dockhand delete docker://localhost:5000/app:old     the manifest :old names, and its tags";

pub const DIGEST: &str = "\
Examples:
  dockhand digest docker://registry.example.com/team/app:1.4      no blob is read
  dockhand digest oci:layout:1.4                  what a push of it keeps
  dockhand digest --all oci:layout:1.4            the multi-platform index's digest";

pub const COMPLETIONS: &str = "\
Examples:
  dockhand completions bash > ~/.local/share/bash-completion/completions/dockhand
  dockhand completions zsh > ~/.zfunc/_dockhand     (with fpath+=(~/.zfunc))
  dockhand completions fish > ~/.config/fish/completions/dockhand.fish
  dockhand completions elvish >> ~/.config/elvish/rc.elv
  dockhand completions powershell >> $PROFILE";

pub const MAN: &str = "\
Examples:
  dockhand man | man -l -                       dockhand(1), which lists the others
  dockhand man convert | man -l -               dockhand-convert(1)
  dockhand man convert > /usr/local/share/man/man1/dockhand-convert.1";

/// `dockhand sync --help`.
pub const SYNC: &str = "\
Examples:
  dockhand sync --src yaml mirror.yaml docker://mirror.internal/hub   skopeo sync's YAML
  dockhand sync --src docker docker://registry.example.com/team/app docker://mirror.internal/
  dockhand sync --src yaml --dry-run --json mirror.yaml docker://mirror.internal/hub
  dockhand sync --src yaml --shard index/8 mirror.yaml docker://mirror.internal/hub
  dockhand sync --src yaml mirror.yaml docker-archive:/srv/images/   one archive per image";

/// `dockhand import --help`.
pub const IMPORT: &str = "\
Examples:
  dockhand import rootfs.tar image.tar --tag myapp:1          as docker import, to a docker-archive
  dockhand import --change 'CMD [\"/bin/app\"]' --change 'ENV MODE=prod' rootfs/ oci:layout:1
  docker export c1 | dockhand import -q - docker-daemon:myapp:exported
  SOURCE_DATE_EPOCH=0 dockhand import --platform linux/arm64 rootfs.tar.zst oci-archive:out.tar";

/// `dockhand append --help`.
pub const APPEND: &str = "\
Examples:
  dockhand append base.tar certs.tar app.tar --tag myapp:1   a layer on top of each image
  dockhand append docker://registry.example.com/base:1 build/out/ docker://registry.example.com/app:1
  dockhand append --change 'ENTRYPOINT [\"/app\"]' -m 'add the app' oci:layout:base app.tar.gz oci:layout:app
  dockhand append docker-daemon:alpine:3 extra/ docker-daemon:alpine:extra";

/// `dockhand flatten --help`.
pub const FLATTEN: &str = "\
Examples:
  dockhand flatten app.tar app-flat.tar --tag myapp:flat      one layer, as crane flatten
  dockhand flatten docker://registry.example.com/app:1 docker://registry.example.com/app:1-flat
  SOURCE_DATE_EPOCH=0 dockhand flatten -m 'squashed' --change 'LABEL flat=yes' oci:layout:1 oci:layout:flat";

/// `dockhand mutate --help`.
pub const MUTATE: &str = "\
Examples:
  dockhand mutate --label team=core --env MODE=prod app.tar app-labelled.tar
  dockhand mutate --entrypoint '[\"/tini\",\"--\"]' --cmd '[\"/app\"]' oci:layout:1 oci:layout:2
  dockhand mutate --change 'EXPOSE 8080' --unset-label maintainer docker://registry.example.com/app:1 docker://registry.example.com/app:2
  dockhand mutate --annotation org.opencontainers.image.source=https://git.example.com/app oci:layout:1 oci:layout:1";
