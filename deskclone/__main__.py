from deskclone.cli import main

main()
