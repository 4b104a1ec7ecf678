from chanconv.cli import main

raise SystemExit(main())
